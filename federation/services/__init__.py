"""Thin gRPC servicers: authenticate the caller, convert, call :class:`federation.node.Node`."""

from federation.services.admin import AdminServicer
from federation.services.agent import AgentServicer
from federation.services.federation import FederationServicer

__all__ = ["AdminServicer", "AgentServicer", "FederationServicer"]
