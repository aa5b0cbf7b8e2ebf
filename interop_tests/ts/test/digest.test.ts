// response_digest (spec §7.3, R-RCP-3) is over Outcome.payload_json as sent: two spellings of
// the same JSON value are two digests (a provider cannot log one spelling and send another).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {payloadDigest} from '../src/requester.js';

test('digest of the bytes as sent, SHA-256("") for none', () => {
  const sent = Buffer.from('[{"a":1.0}]');
  assert.equal(payloadDigest(sent), createHash('sha256').update(sent).digest('hex'));
  assert.notEqual(payloadDigest(Buffer.from('[{"a":1}]')), payloadDigest(sent));
  assert.equal(payloadDigest(new Uint8Array()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
