"""A verifier pool's workers leave with the process that owns the pool, even one killed by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

OWNER = """
import asyncio, sys
from credentials.pool import VerifierPool

async def main():
    pool = VerifierPool(2, 10.0)
    assert await pool.wait_ready()
    print(" ".join(str(p) for p in pool._executor._processes), flush=True)
    await asyncio.sleep(600)

if __name__ == "__main__":
    asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone for our purpose
        return fh.read().split()[2] != "Z"


def test_workers_exit_after_their_owner_is_killed(tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in owner.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "workers outlived their owner"
    finally:
        owner.kill()
