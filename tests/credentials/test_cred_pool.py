"""Issue #10 class 2: verification runs off the event loop, in worker processes, within a deadline."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from credentials import (
    CredentialError,
    StaticKeyResolver,
    create_presentation,
    issue_credential,
    verification_method_id,
    verify_presentation,
)
from credentials.pool import VerifierPool
from tests.credentials.cred_support import NOW, ORG_VM, VERIFIER_DID


@pytest.fixture()
def presentation(unsigned_agent_credential, org_key, agent_key, agent_did):
    signed = issue_credential(unsigned_agent_credential, key=org_key, verification_method=ORG_VM)
    return create_presentation(
        [signed],
        holder=agent_did,
        key=agent_key,
        verification_method=verification_method_id(agent_did),
        challenge="c-1",
        domain=VERIFIER_DID,
    )


@pytest.fixture()
def pool():
    p = VerifierPool(max_workers=1, deadline_seconds=60)
    yield p
    p.close()


def _verify(pool, vp, resolver, challenge="c-1", **kw):
    return pool.verify_presentation(
        vp, challenge=challenge, domain=VERIFIER_DID, resolve_key=resolver, now=NOW, **kw
    )


def _gone(pid: int) -> bool:
    """The process has exited (a zombie counts: it runs nothing)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" in status.read_text()
    except FileNotFoundError:
        return True


def test_pool_verifies_like_the_library_and_raises_its_errors(pool, presentation, org_key):
    resolver = StaticKeyResolver({ORG_VM: org_key.public_key})
    here = verify_presentation(
        presentation, challenge="c-1", domain=VERIFIER_DID, resolve_key=resolver, now=NOW
    )
    there = asyncio.run(_verify(pool, presentation, resolver))
    assert there == here and there.credentials[0].agent == here.credentials[0].agent
    with pytest.raises(CredentialError) as info:
        asyncio.run(_verify(pool, presentation, resolver, challenge="c-2"))
    assert info.value.reason == "WRONG_CHALLENGE" and info.value.metadata["expected"] == "c-2"


def test_stuck_job_times_out_its_worker_is_terminated_and_the_pool_keeps_serving(pool, presentation, org_key):
    resolver = StaticKeyResolver({ORG_VM: org_key.public_key})
    worker = asyncio.run(pool.run(os.getpid))
    assert worker != os.getpid()
    with pytest.raises(CredentialError) as info:
        asyncio.run(pool.run(time.sleep, 600, deadline_seconds=0.5))
    assert info.value.reason == "VERIFICATION_TIMEOUT" and info.value.caller_fault is False
    assert pool.replacements == 1
    for _ in range(100):  # terminated, not left running the stuck job
        if _gone(worker):
            break
        time.sleep(0.05)
    assert _gone(worker)
    # later requests are served by a fresh pool
    assert asyncio.run(_verify(pool, presentation, resolver)).holder == presentation["holder"]
    assert asyncio.run(pool.run(os.getpid)) != worker


def test_a_verification_past_its_deadline_is_refused(pool, presentation, org_key):
    resolver = StaticKeyResolver({ORG_VM: org_key.public_key})
    asyncio.run(pool.run(os.getpid))  # started: start-up never counts against a deadline
    with pytest.raises(CredentialError) as info:  # RDFC-1.0 of a presentation takes far more than 1 µs
        asyncio.run(_verify(pool, presentation, resolver, deadline_seconds=1e-6))
    assert info.value.reason == "VERIFICATION_TIMEOUT"
    assert asyncio.run(_verify(pool, presentation, resolver)).credentials


def test_event_loop_stays_responsive_while_a_worker_works(pool):
    async def scenario() -> int:
        await pool.run(os.getpid)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        await pool.run(time.sleep, 0.3)
        task.cancel()
        return ticks

    assert asyncio.run(scenario()) > 10


def test_pool_arguments_are_checked():
    with pytest.raises(ValueError):
        VerifierPool(max_workers=0)
    with pytest.raises(ValueError):
        VerifierPool(deadline_seconds=0)


def test_inline_while_starting_serves_first_jobs_in_the_caller_then_the_workers():
    from concurrent.futures import wait

    pool = VerifierPool(max_workers=1, deadline_seconds=60, inline_while_starting=True)
    try:
        assert asyncio.run(pool.run(os.getpid)) == os.getpid()  # workers still starting: no wait
        wait(pool._warmup, timeout=120)
        assert asyncio.run(pool.run(os.getpid)) != os.getpid()
    finally:
        pool.close()
