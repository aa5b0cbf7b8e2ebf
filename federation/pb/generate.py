"""Generate (or check) the protobuf/gRPC Python code from ``proto/``.

Usage: ``python -m federation.pb.generate [--check]``. The generated modules
(``federation_pb2.py``, ``federation_pb2.pyi``, ``federation_pb2_grpc.py``)
land in this package with package-relative imports. ``--check`` regenerates
into a temporary directory and exits 1 when the committed files differ
(ignoring the protoc/grpc version stamp lines, which vary with the
grpcio-tools patch release).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO = "accord/federation/v1/federation.proto"
NAMES = ("federation_pb2.py", "federation_pb2.pyi", "federation_pb2_grpc.py")
_STAMP = re.compile(
    r"^(# Protobuf Python Version:.*|GRPC_GENERATED_VERSION = .*|\s*\d+,\s*$|"
    r"_runtime_version\.ValidateProtobufRuntimeVersion\(.*)$",
    re.M,
)


def _generate(out: Path) -> None:
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(PROTO_ROOT / PROTO),
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    gen = out / "accord" / "federation" / "v1"
    for name in NAMES:
        text = (gen / name).read_text()
        text = text.replace(
            "from accord.federation.v1 import federation_pb2",
            "from federation.pb import federation_pb2",
        )
        (out / name).write_text(text)


def _normal(text: str) -> str:
    return _STAMP.sub("", text)


def main(argv: list[str]) -> int:
    """Generate into this package, or with ``--check`` compare and exit 1 on drift."""
    check = "--check" in argv
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _generate(out)
        drift = []
        for name in NAMES:
            new = (out / name).read_text()
            old_path = HERE / name
            if check:
                old = old_path.read_text() if old_path.exists() else ""
                if _normal(old) != _normal(new):
                    drift.append(name)
            else:
                old_path.write_text(new)
    if drift:
        print(f"generated code is stale: {', '.join(drift)}; run `make proto`", file=sys.stderr)
        return 1
    print("generated code is up to date" if check else "generated federation/pb/*")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
