"""AutoGen (AgentChat 0.7): an assistant asks the hospital for triage data through Accord (MCP).

    python examples/autogen_triage.py --dir /tmp/accord/relief

The ``AssistantAgent``'s one tool, ``request_records``, goes through ``accord
mcp serve``: only the MNI fields of the contract come back. Scripted model
(AutoGen's own ``ReplayChatCompletionClient``) by default; see
``accord_mcp.live_endpoint`` for a live one.

Install note: autogen-core 0.7 pins ``protobuf~=5.29`` while Accord's generated
code needs protobuf ≥ 7.35; AutoGen imports and runs with protobuf 7 (it uses
protobuf only for its distributed runtime), so ``make`` installs it with
``--no-deps`` (see the Makefile).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accord_mcp import SCRIPTED_CALL, SYSTEM, TASK, AccordTools, cli, live_endpoint  # noqa: E402

MODEL_INFO = {
    "function_calling": True,
    "vision": False,
    "json_output": False,
    "structured_output": False,
    "family": "unknown",
}


def model_client() -> Any:
    """The live client when configured, else a replay of one tool call and one answer."""
    live = live_endpoint()
    if live is not None:
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        return OpenAIChatCompletionClient(
            model=live["model"], base_url=live["base_url"], api_key=live["api_key"], model_info=MODEL_INFO
        )
    from autogen_core import FunctionCall
    from autogen_core.models import CreateResult, RequestUsage
    from autogen_ext.models.replay import ReplayChatCompletionClient

    call = CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id="call-1", arguments=json.dumps(SCRIPTED_CALL), name="request_records")],
        usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
        cached=False,
    )
    return ReplayChatCompletionClient(
        [call, "Triage data received; routing the patient to the shelter."], model_info=MODEL_INFO
    )


async def run(node_dir: str | Path, agent: str = "triage-coordinator") -> dict[str, Any]:
    """Run the agent once; returns its final answer and what crossed."""
    from autogen_agentchat.agents import AssistantAgent

    async with AccordTools(node_dir, agent) as accord:

        async def request_records(
            partner: str, purpose: str, subject: str, fields: list[str] | None = None
        ) -> str:
            """Ask a partner organization for one subject's records under a contract purpose."""
            return await accord.request_records(partner, purpose, subject, fields)

        assistant = AssistantAgent(
            "relief_coordinator",
            model_client=model_client(),
            tools=[request_records],
            system_message=SYSTEM,
            reflect_on_tool_use=True,
        )
        result = await assistant.run(task=TASK)
        return {
            "framework": "autogen",
            "final": result.messages[-1].content,
            "records": accord.released_records(),
            "calls": [json.loads(json.dumps(c, default=str)) for c in accord.calls],
        }


if __name__ == "__main__":
    cli(run)
