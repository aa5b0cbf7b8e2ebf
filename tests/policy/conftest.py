from __future__ import annotations

from collections.abc import Iterator

import pytest
from policy_opa_stub import OpaStub
from policy_support import TABLE_CONTRACTS, load_contract

from policy import Contract, OpaRestEngine, RegopyEngine


@pytest.fixture(scope="session")
def hospital() -> Contract:
    return load_contract("hospital.yaml")


@pytest.fixture(scope="session")
def table_contracts() -> list[Contract]:
    return [load_contract(n) for n in TABLE_CONTRACTS]


@pytest.fixture(scope="session")
def regopy_engine(table_contracts: list[Contract]) -> RegopyEngine:
    e = RegopyEngine()
    e.load(table_contracts)
    return e


@pytest.fixture(scope="session")
def opa_stub() -> Iterator[OpaStub]:
    stub = OpaStub().start()
    yield stub
    stub.stop()


@pytest.fixture(scope="session")
def opa_engine(table_contracts: list[Contract]) -> Iterator[OpaRestEngine]:
    # its own OPA: tests that load other versions of the same contract ids into the shared
    # ``opa_stub`` would otherwise change what this engine decides under (it then refuses
    # every decision: "the engine decided under another contract than the one looked up")
    stub = OpaStub().start()
    e = OpaRestEngine(stub.url, timeout_seconds=5.0)
    e.load(table_contracts)
    yield e
    e.close()
    stub.stop()
