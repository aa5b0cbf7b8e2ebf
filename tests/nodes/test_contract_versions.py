"""A contract version only moves forward at the node, even for files placed on disk (issue #10, class 3).

The CLI's ``contract register`` refuses an older version; a file copied into
``contracts/`` by hand once replaced the version in force on the next reload.
"""

from __future__ import annotations

import json

from federation.demo.setup import _sign_both, provision
from federation.identity import NodeIdentity
from federation.node import Node
from policy import Contract


def _close(node: Node) -> None:
    node.ledger.close()
    node.witness.close()


def test_an_older_contract_file_never_replaces_the_version_in_force(tmp_path):
    layout = provision(tmp_path, orgs=("hospital", "relief"), with_interop=False)
    hdir = layout.orgs["hospital"]
    path = hdir / "contracts" / "relief-hospital-triage.json"
    v1 = json.loads(path.read_text())
    idents = {o: NodeIdentity.load(layout.orgs[o]) for o in ("hospital", "relief")}
    terms = {k: v for k, v in v1.items() if k != "signatures"}
    v2 = _sign_both({**terms, "version": 2, "title": "Flood triage coordination (amended)"}, idents)
    v2.dump(path)
    node = Node.open(hdir)
    try:
        assert node.contracts["relief-hospital-triage"].version == 2
        path.write_text(json.dumps(v1))  # the old signed file, put back by hand
        node.reload()
        assert node.contracts["relief-hospital-triage"].version == 2, "v1 must not replace v2"
        assert node.rejected_contracts["relief-hospital-triage"] == "CONTRACT_VERSION_NOT_NEWER"
    finally:
        _close(node)
    node = Node.open(hdir)  # a restart remembers the version put in force
    try:
        assert "relief-hospital-triage" not in node.contracts
        assert node.rejected_contracts["relief-hospital-triage"] == "CONTRACT_VERSION_NOT_NEWER"
        assert Contract.load(path).version == 1
    finally:
        _close(node)
