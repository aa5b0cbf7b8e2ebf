"""The ``[a2a]`` section of ``node.toml``: which agents an organization exposes over A2A.

    [a2a]
    max_part_bytes = 65536

    [[a2a.expose]]
    agent = "triage-desk"
    skills = ["triage-coordination"]
    description = "Answers triage questions about patients in our care"

Each exposed agent becomes one A2A Agent Card (A2A specification, "Agent
Card") served, signed with the organization key, to pinned partner
organizations only (``FederationService.GetAgentCards``). Its skills are
contract purposes: a partner's card lists only the skills whose purpose a
contract in force between the two organizations names (this organization
the provider). Pure data: no a2a-sdk import, so the node loads it cheaply.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""Exposed agent names: a DNS label (they appear in URL paths of the gateway)."""


class ExposedAgent(BaseModel):
    """One agent exposed to partner organizations as an A2A agent.

    Attributes:
        agent: the agent's public name (a DNS label), unique within the section.
        skills: contract purposes this agent answers (A2A ``AgentSkill.id``),
            1..64 distinct purpose names.
        description: the card's ``description`` (at most 1000 characters).

    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    agent: str = Field(pattern=NAME_PATTERN)
    skills: list[str] = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=1000)

    @field_validator("skills")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a skill is named twice")
        for s in value:
            if not 1 <= len(s) <= 128:
                raise ValueError(f"skill (purpose) name must be 1..128 characters, got {s!r}")
        return value


class A2AConfig(BaseModel):
    """The A2A gateway settings.

    Attributes:
        expose: the agents exposed to partners (at most 64, distinct names).
        max_part_bytes: largest accepted message part, bytes of its serialized (protobuf) form;
            a larger part is refused (``A2A_PART_TOO_LARGE``) before anything crosses.
        max_parts: most parts in one message (``A2A_TOO_MANY_PARTS``).
        card_ttl_seconds: how long the gateway keeps a partner's verified cards, seconds.

    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    expose: list[ExposedAgent] = Field(default_factory=list, max_length=64)
    max_part_bytes: int = Field(default=64 * 1024, gt=0, le=1 << 20)
    max_parts: int = Field(default=8, gt=0, le=64)
    card_ttl_seconds: float = Field(default=60.0, ge=0)

    @field_validator("expose")
    @classmethod
    def _distinct_agents(cls, value: list[ExposedAgent]) -> list[ExposedAgent]:
        names = [e.agent for e in value]
        if len(set(names)) != len(names):
            raise ValueError("an exposed agent is named twice")
        return value
