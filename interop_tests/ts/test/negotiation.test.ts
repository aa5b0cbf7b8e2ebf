// NodeInfo negotiation (WIRE.md "Negotiation"): a peer with nothing in common is refused
// with the precise reason, checked in order version -> cryptosuite -> algorithm.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {ProtocolError} from '../src/pae.js';
import {checkNodeInfo, SUPPORTED} from '../src/requester.js';

const peer = {org_did: 'did:web:hospital.accord.test', org_name: 'hospital'};
const good = {org_did: peer.org_did, ...SUPPORTED};

function reason(info: any): string {
  try {
    checkNodeInfo(info, peer);
    return 'OK';
  } catch (e) {
    assert.ok(e instanceof ProtocolError && e.status === 'FAILED_PRECONDITION');
    return e.reason;
  }
}

test('a peer that speaks v1, eddsa-rdfc-2022 and ed25519 is accepted', () => {
  assert.equal(reason(good), 'OK');
  assert.equal(reason({...good, protocol_versions: ['accord.federation.v2', 'accord.federation.v1'], cryptosuites: ['eddsa-jcs-2022', 'eddsa-rdfc-2022']}), 'OK');
});

test('no common version / suite / algorithm, or another DID: each its reason', () => {
  assert.equal(reason({...good, protocol_versions: ['accord.federation.v2']}), 'UNSUPPORTED_VERSION');
  assert.equal(reason({...good, protocol_versions: []}), 'UNSUPPORTED_VERSION');
  assert.equal(reason({...good, cryptosuites: ['eddsa-jcs-2022']}), 'UNSUPPORTED_CRYPTOSUITE');
  assert.equal(reason({...good, signature_algorithms: ['ml-dsa-44']}), 'UNSUPPORTED_ALGORITHM');
  assert.equal(reason({...good, protocol_versions: ['x'], signature_algorithms: []}), 'UNSUPPORTED_VERSION');
  assert.equal(reason({...good, org_did: 'did:web:mallory.accord.test'}), 'UNKNOWN_PEER');
  assert.equal(reason({...good, ledger_formats: ['c2sp-tlog-checkpoint', 'rfc9162-sha256']}), 'UNSUPPORTED_LEDGER_FORMAT');
  assert.equal(reason({...good, signature_algorithms: [], ledger_formats: []}), 'UNSUPPORTED_ALGORITHM');
  // only the first 64 entries are read
  assert.equal(reason({...good, protocol_versions: [...Array(64).fill('accord.federation.v9'), 'accord.federation.v1']}), 'UNSUPPORTED_VERSION');
});
