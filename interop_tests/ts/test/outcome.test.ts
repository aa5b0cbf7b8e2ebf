// Outcome bounds and receipt binding: a provider's answer is bounded before it is parsed,
// and its logged entry must be canonical and name this exchange.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import canonicalize from 'canonicalize';
import {bindEntry, checkOutcomeSize, ReceiptError, strictBase64} from '../src/requester.js';

const ok = {
  payload_json: Buffer.from('[]'), released_fields: ['a'], stripped_fields: [], reasons: [], obligations: [],
  disclosure_id: 'dsc_1', decision_hash: 'ab', decision: 'allow', effective_trust: 0.5,
  receipt: {tlog_proof: 'x', entry: Buffer.from('{}'), leaf_hash: Buffer.alloc(32)},
};

function reason(f: () => void): string {
  try {
    f();
    return 'OK';
  } catch (e) {
    assert.ok(e instanceof ReceiptError);
    return e.reason + ' ' + e.message;
  }
}

test('outcome bounds: each member refused with OUTCOME_TOO_LARGE naming it', () => {
  assert.equal(reason(() => checkOutcomeSize(ok)), 'OK');
  assert.match(reason(() => checkOutcomeSize({...ok, payload_json: Buffer.alloc((1 << 20) + 1)})), /^OUTCOME_TOO_LARGE outcome.payload_json/);
  assert.match(reason(() => checkOutcomeSize({...ok, reasons: Array(257).fill('r')})), /outcome.reasons is 257/);
  assert.match(reason(() => checkOutcomeSize({...ok, released_fields: ['x'.repeat(257)]})), /outcome.released_fields is 257/);
  assert.match(reason(() => checkOutcomeSize({...ok, receipt: {...ok.receipt, entry: Buffer.alloc(65536)}})), /receipt.entry/);
  assert.match(reason(() => checkOutcomeSize({...ok, receipt: {...ok.receipt, leaf_hash: Buffer.alloc(33)}})), /receipt.leaf_hash/);
  assert.match(reason(() => checkOutcomeSize({...ok, effective_trust: NaN})), /not finite/);
});

test('entry binding: canonical JCS, every expected member equal', () => {
  const entry = {kind: 'disclosure', disclosure_id: 'dsc_1', fields_released: ['a', 'b'], record_count: 2, effective_trust: 0.5};
  const bytes = Buffer.from(canonicalize(entry) as string);
  assert.equal(reason(() => bindEntry(bytes, {kind: ['disclosure'], disclosure_id: 'dsc_1', fields_released: ['a', 'b'], record_count: 2})), 'OK');
  assert.match(reason(() => bindEntry(bytes, {kind: ['denial']})), /RECEIPT_MISMATCH .* kind/);
  assert.match(reason(() => bindEntry(bytes, {fields_released: ['b', 'a'], record_count: 3})), /in fields_released, record_count$/);
  // the same JSON, not canonical (key order, spacing): refused
  assert.match(reason(() => bindEntry(Buffer.from(JSON.stringify(entry, null, 1)), {})), /not RFC 8785 canonical/);
  assert.match(reason(() => bindEntry(Buffer.from('{"kind":'), {})), /not JSON/);
});

test('entry_b64 is decoded strictly (R-RCP-7): what a lax decoder skips is refused', () => {
  const entry = Buffer.from('{"kind":"denial","disclosure_id":"dsc_1"}');
  const b64 = entry.toString('base64');
  assert.deepEqual(strictBase64(b64), entry);
  for (const bad of [b64.slice(0, 8) + '!' + b64.slice(8), b64.slice(0, 8) + '\n' + b64.slice(8), b64.slice(0, -4) + '****', b64 + 'A', b64.replace(/=+$/, '')]) {
    assert.equal(strictBase64(bad), undefined, JSON.stringify(bad));
    if (bad !== b64.replace(/=+$/, '')) {
      assert.ok(Buffer.from(bad, 'base64').length > 0); // a lax decoder reads something
    }
  }
});
