"""LangGraph: a ReAct agent asks the hospital for triage data through Accord (MCP).

    python examples/langgraph_triage.py --dir /tmp/accord/relief

The graph is a ReAct loop built with LangGraph's ``StateGraph``: a model node and
a ``ToolNode``, joined by ``tools_condition``. Its one
tool, ``request_records``, goes through ``accord mcp serve``: only the MNI
fields of the contract come back. Scripted chat model by default; see
``accord_mcp.live_endpoint`` for a live one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accord_mcp import SCRIPTED_CALL, SYSTEM, TASK, AccordTools, cli, live_endpoint  # noqa: E402


def scripted_model() -> Any:
    """A LangChain chat model that calls ``request_records`` once, then answers from the tool result."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class ScriptedChatModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "accord-scripted"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _generate(
            self, messages: list, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            results = [m for m in messages if isinstance(m, ToolMessage)]
            if not results:
                msg = AIMessage(
                    content="",
                    tool_calls=[{"name": "request_records", "args": SCRIPTED_CALL, "id": "call-1"}],
                )
            else:
                msg = AIMessage(content=f"Triage data received: {results[-1].content}")
            return ChatResult(generations=[ChatGeneration(message=msg)])

    return ScriptedChatModel()


def model() -> Any:
    """The live model when configured, else the scripted one."""
    live = live_endpoint()
    if live is None:
        return scripted_model()
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=live["model"], base_url=live["base_url"], api_key=live["api_key"], temperature=0)


async def run(node_dir: str | Path, agent: str = "triage-coordinator") -> dict[str, Any]:
    """Run the agent once; returns its final answer and what crossed."""
    from langchain_core.messages import SystemMessage
    from langchain_core.tools import StructuredTool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    async with AccordTools(node_dir, agent) as accord:
        tool = StructuredTool.from_function(
            coroutine=accord.request_records,
            name="request_records",
            description="Ask a partner organization for one subject's records under a contract purpose "
            "(Accord: only the minimum necessary fields are released).",
        )
        llm = model().bind_tools([tool])

        async def call_model(state: MessagesState) -> dict:
            return {"messages": [await llm.ainvoke([SystemMessage(SYSTEM), *state["messages"]])]}

        builder = StateGraph(MessagesState)
        builder.add_node("model", call_model)
        builder.add_node("tools", ToolNode([tool]))
        builder.add_edge(START, "model")
        builder.add_conditional_edges("model", tools_condition)
        builder.add_edge("tools", "model")
        graph = builder.compile()
        state = await graph.ainvoke({"messages": [("user", TASK)]})
        final = state["messages"][-1].content
        return {
            "framework": "langgraph",
            "final": final,
            "records": accord.released_records(),
            "calls": [json.loads(json.dumps(c, default=str)) for c in accord.calls],
        }


if __name__ == "__main__":
    cli(run)
