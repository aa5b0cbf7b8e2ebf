"""AgentScope (2.x): a ReAct agent asks the hospital for triage data through Accord (MCP).

    python examples/agentscope_triage.py --dir /tmp/accord/relief

The ``Agent``'s toolkit holds one ``FunctionTool``, ``request_records``, that goes
through ``accord mcp serve``: only the MNI fields of the contract come back.
Scripted chat model (a ``ChatModelBase``) by default; see
``accord_mcp.live_endpoint`` for a live one (``OpenAIChatModel``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accord_mcp import SCRIPTED_CALL, SYSTEM, TASK, AccordTools, cli, live_endpoint  # noqa: E402


def scripted_model() -> Any:
    """A chat model that calls ``request_records`` once, then answers."""
    from agentscope.credential import CredentialBase
    from agentscope.formatter import OpenAIChatFormatter
    from agentscope.message import TextBlock, ToolCallBlock
    from agentscope.model import ChatModelBase, ChatResponse
    from pydantic import BaseModel

    class ScriptedChatModel(ChatModelBase):
        class Parameters(BaseModel):
            pass

        def __init__(self) -> None:
            super().__init__(
                credential=CredentialBase(),
                model="accord-scripted",
                parameters=self.Parameters(),
                stream=False,
            )
            self.formatter = OpenAIChatFormatter()  # what the agent reads its supported media from

        async def _call_api(
            self, model_name: str, messages: list, tools: Any = None, tool_choice: Any = None, **kwargs: Any
        ) -> ChatResponse:
            answered = any(getattr(b, "type", None) == "tool_result" for m in messages for b in m.content)
            if not answered:
                block = ToolCallBlock(id="call-1", name="request_records", input=json.dumps(SCRIPTED_CALL))
            else:
                block = TextBlock(text="Triage data received; routing the patient to the shelter.")
            return ChatResponse(content=[block], is_last=True)

    return ScriptedChatModel()


def model() -> Any:
    """The live model when configured, else the scripted one."""
    live = live_endpoint()
    if live is None:
        return scripted_model()
    from agentscope.credential import OpenAICredential
    from agentscope.model import OpenAIChatModel

    return OpenAIChatModel(
        credential=OpenAICredential(api_key=live["api_key"], base_url=live["base_url"]),
        model=live["model"],
        stream=False,
    )


async def run(node_dir: str | Path, agent: str = "triage-coordinator") -> dict[str, Any]:
    """Run the agent once; returns its final answer and what crossed."""
    from agentscope.agent import Agent
    from agentscope.message import Msg, TextBlock
    from agentscope.tool import FunctionTool, Toolkit

    async with AccordTools(node_dir, agent) as accord:

        async def request_records(
            partner: str, purpose: str, subject: str, fields: list[str] | None = None
        ) -> str:
            """Ask a partner organization for one subject's records under a contract purpose.

            Args:
                partner (`str`): the partner organization's name.
                purpose (`str`): the contract purpose.
                subject (`str`): the subject key, e.g. a patient id.
                fields (`list[str] | None`): fields wanted (default: the minimum necessary ones).
            """
            return await accord.request_records(partner, purpose, subject, fields)

        a = Agent(
            name="relief_coordinator",
            system_prompt=SYSTEM,
            model=model(),
            toolkit=Toolkit(tools=[FunctionTool(request_records, is_read_only=True)]),
        )
        reply = await a.reply(Msg(name="user", content=[TextBlock(text=TASK)], role="user"))
        final = reply.get_text_content() if hasattr(reply, "get_text_content") else str(reply.content)
        return {
            "framework": "agentscope",
            "final": final,
            "records": accord.released_records(),
            "calls": [json.loads(json.dumps(c, default=str)) for c in accord.calls],
        }


if __name__ == "__main__":
    cli(run)
