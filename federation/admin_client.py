"""The operator's client for a running node's AdminService (operator certificate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from federation.paths import NodePaths
from federation.pb import federation_pb2 as pb
from federation.pb import federation_pb2_grpc as pbg


def _running_endpoint(directory: Path) -> str | None:
    from federation.lifecycle import read_pidfile, running_pid

    paths = NodePaths(directory)
    if running_pid(paths.pidfile) is None:  # no node holds the pid file's lock
        return None
    info = read_pidfile(paths.pidfile)
    if "port" not in info:  # still starting
        return None
    host = info.get("host") or "127.0.0.1"
    if host in ("0.0.0.0", "[::]", ""):
        host = "127.0.0.1"
    return f"{host}:{info['port']}"


def admin_channel(directory: Path, endpoint: str) -> grpc.aio.Channel:
    """A channel to the node presenting the operator certificate."""
    tls = NodePaths(directory).tls
    creds = grpc.ssl_channel_credentials(
        root_certificates=(tls / "ca.pem").read_bytes(),
        private_key=(tls / "operator.key").read_bytes(),
        certificate_chain=(tls / "operator.pem").read_bytes(),
    )
    return grpc.aio.secure_channel(endpoint, creds)


async def reload_running_node(directory: Path) -> dict[str, Any] | None:
    """Call ``AdminService.Reload`` on the node running from ``directory`` (None if none runs)."""
    endpoint = _running_endpoint(directory)
    if endpoint is None:
        return None
    async with admin_channel(directory, endpoint) as channel:
        r = await pbg.AdminServiceStub(channel).Reload(pb.ReloadRequest(), timeout=10)
    return {"peers": r.peers, "agents": r.agents, "contracts": r.contracts}
