"""OpenAI Agents SDK: an agent asks the hospital for triage data through Accord (MCP).

    python examples/openai_agents_triage.py --dir /tmp/accord/relief

The agent's one function tool, ``request_records``, goes through ``accord mcp
serve``: only the MNI fields of the contract come back. Scripted model (an
``agents.models.interface.Model``) by default; see ``accord_mcp.live_endpoint``
for a live one (Chat Completions API of any OpenAI-compatible server).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accord_mcp import SCRIPTED_CALL, SYSTEM, TASK, AccordTools, cli, live_endpoint  # noqa: E402


def scripted_model() -> Any:
    """A Model that calls ``request_records`` once, then answers with the tool result."""
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    class ScriptedModel(Model):
        async def get_response(self, system_instructions, input, *args: Any, **kwargs: Any) -> ModelResponse:
            items = input if isinstance(input, list) else []
            outputs = [i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
            if not outputs:
                out = ResponseFunctionToolCall(
                    arguments=json.dumps(SCRIPTED_CALL),
                    call_id="call-1",
                    name="request_records",
                    type="function_call",
                    id="fc-1",
                    status="completed",
                )
            else:
                out = ResponseOutputMessage(
                    id="msg-1",
                    content=[
                        ResponseOutputText(
                            text=f"Triage data received: {outputs[-1]['output']}",
                            type="output_text",
                            annotations=[],
                        )
                    ],
                    role="assistant",
                    status="completed",
                    type="message",
                )
            return ModelResponse(output=[out], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the scripted model does not stream")

    return ScriptedModel()


def model() -> Any:
    """The live model when configured, else the scripted one."""
    live = live_endpoint()
    if live is None:
        return scripted_model()
    from agents import OpenAIChatCompletionsModel
    from openai import AsyncOpenAI

    return OpenAIChatCompletionsModel(
        model=live["model"], openai_client=AsyncOpenAI(base_url=live["base_url"], api_key=live["api_key"])
    )


async def run(node_dir: str | Path, agent: str = "triage-coordinator") -> dict[str, Any]:
    """Run the agent once; returns its final answer and what crossed."""
    from agents import Agent, RunConfig, Runner, function_tool

    async with AccordTools(node_dir, agent) as accord:

        @function_tool
        async def request_records(
            partner: str, purpose: str, subject: str, fields: list[str] | None = None
        ) -> str:
            """Ask a partner organization for one subject's records under a contract purpose.

            Args:
                partner: the partner organization's name.
                purpose: the contract purpose.
                subject: the subject key, e.g. a patient id.
                fields: fields wanted (default: the purpose's minimum necessary fields).
            """
            return await accord.request_records(partner, purpose, subject, fields)

        a = Agent(name="relief-coordinator", instructions=SYSTEM, tools=[request_records], model=model())
        result = await Runner.run(a, TASK, run_config=RunConfig(tracing_disabled=True))
        return {
            "framework": "openai-agents",
            "final": result.final_output,
            "records": accord.released_records(),
            "calls": [json.loads(json.dumps(c, default=str)) for c in accord.calls],
        }


if __name__ == "__main__":
    cli(run)
