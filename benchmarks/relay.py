"""A raw gRPC relay with the same hops as a federation exchange (the benchmark's baseline).

``front`` receives a unary call over mutual TLS and forwards it, over a
second mutual-TLS channel, to ``back``, which answers with a payload of a
given size; the answer travels back the same way. No credentials, policy or
ledger: what remains is gRPC, TLS, two processes and the same message
sizes as a full exchange.

    python -m benchmarks.relay back  --dir NODE_B --port P --reply-bytes N
    python -m benchmarks.relay front --dir NODE_A --port P --upstream HOST:PORT --upstream-ca FILE
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc

METHOD = "/accord.bench.v1.Relay/Call"


def _identity(directory: Path) -> tuple[bytes, bytes, bytes]:
    tls = directory / "tls"
    return (tls / "node.pem").read_bytes(), (tls / "node.key").read_bytes(), (tls / "ca.pem").read_bytes()


async def serve(args: argparse.Namespace) -> None:
    """Run the front or back relay until SIGTERM."""
    cert, key, ca = _identity(Path(args.dir))
    roots = ca + b"".join(Path(p).read_bytes() for p in args.trust)
    creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=roots, require_client_auth=True)
    server = grpc.aio.server()
    if args.role == "back":
        reply = b"x" * args.reply_bytes

        async def call(request: bytes, context) -> bytes:
            return reply
    else:
        up_creds = grpc.ssl_channel_credentials(
            root_certificates=Path(args.upstream_ca).read_bytes(), private_key=key, certificate_chain=cert
        )
        channel = grpc.aio.secure_channel(args.upstream, up_creds)
        forward = channel.unary_unary(METHOD)

        async def call(request: bytes, context) -> bytes:
            return await forward(request, timeout=10)

    handler = grpc.method_handlers_generic_handler(
        "accord.bench.v1.Relay", {"Call": grpc.unary_unary_rpc_method_handler(call)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port(f"127.0.0.1:{args.port}", creds)
    await server.start()
    print(f"READY relay-{args.role} 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main() -> None:
    """Parse arguments and serve."""
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["front", "back"])
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--trust", action="append", default=[], help="extra client CA files")
    p.add_argument("--reply-bytes", type=int, default=400)
    p.add_argument("--upstream", default="")
    p.add_argument("--upstream-ca", default="")
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
