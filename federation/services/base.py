"""The one place RPC handlers turn exceptions into gRPC statuses."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog

from federation import observability as obs
from federation.store import as_unavailable
from federation.wire import to_rpc_status

log = structlog.get_logger("accord.rpc")
T = TypeVar("T")


def rpc(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap a servicer method: typed errors → status + ErrorInfo; anything else → INTERNAL.

    Errors with a ``reason`` (every package's typed errors) keep their
    reason code; a lost database connection becomes ``UNAVAILABLE`` /
    ``DATABASE_UNAVAILABLE`` (:func:`federation.store.as_unavailable`);
    unexpected exceptions are logged with their traceback and
    answered with INTERNAL and no detail (never a stack trace on the wire).
    """

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as raised:  # translated at exactly this point
            exc = as_unavailable(raised)  # the database away: UNAVAILABLE, DATABASE_UNAVAILABLE
            if not hasattr(exc, "reason"):
                log.exception("unexpected error in RPC", method=handler.__name__)
            else:
                obs.REFUSED.labels(reason=exc.reason).inc()  # type: ignore[attr-defined]
                log.info(
                    "rpc refused",
                    method=handler.__name__,
                    reason=exc.reason,  # type: ignore[attr-defined]
                    error=str(exc)[:300],
                )
            await context.abort_with_status(to_rpc_status(exc))
            raise AssertionError("unreachable") from None

    return wrapper
