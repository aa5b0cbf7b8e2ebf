"""Child process for the kill -9 test: appends forever, acknowledging only after the append returns.

Batches alternate at random between ``append`` (sequencing only, as the
requester's group-committed "received" entries) and ``append_integrated``
(sequence, integrate and sign in one commit, as a provider's batch).

Usage: python ledger_crash_child.py DB_URL ACK_FILE ROUND
"""

from __future__ import annotations

import os
import random
import sys

from ledger_support import make_entry

from ledger import NoteSigner, TransparencyLog

ORIGIN = "accord.example/provider/log"


def main() -> None:
    url, ack_path, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    log = TransparencyLog.open(url, origin=ORIGIN, signer=NoteSigner(ORIGIN, bytes(range(32))))
    rng = random.Random(rnd)
    with open(ack_path, "a", encoding="utf-8") as ack:
        ack.write(f"ready {rnd}\n")
        ack.flush()
        n = 0
        while True:
            batch = [make_entry(rnd * 1_000_000 + n + k) for k in range(rng.randint(1, 20))]
            n += len(batch)
            if rng.random() < 0.5:
                results = log.append(batch)
            else:
                results = log.append_integrated(batch).results
            for e, r in zip(batch, results, strict=True):
                ack.write(f"{r.index} {e.disclosure_id}\n")
            ack.flush()
            os.fsync(ack.fileno())
            if rng.random() < 0.2:
                log.integrate()


if __name__ == "__main__":
    main()
