// The published wire vectors (docs/spec/vectors/*.json): PAE bytes, signed payloads
// (exact payload bytes, PAE, signature from the seed) and the negative vectors with their
// expected gRPC status and reason. Both implementations check all of them.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {existsSync, readFileSync} from 'node:fs';
import {join} from 'node:path';
import {Ed25519Key} from '../src/ed25519.js';
import {pae, ProtocolError, verifyPayload} from '../src/pae.js';
import {openPayload} from '../src/payload.js';
import {encode} from '../src/proto.js';
import {REPO} from '../src/paths.js';

const DIR = join(REPO, 'docs', 'spec', 'vectors');
const have = existsSync(join(DIR, 'pae.json'));
const load = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8'));
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('PAE vectors', {skip: !have && 'docs/spec/vectors not on this branch yet'}, () => {
  const {vectors} = load('pae.json');
  assert.ok(vectors.length >= 3);
  for (const v of vectors) {
    assert.equal(toHex(pae(v.payload_type, hex(v.payload_hex))), v.pae_hex, v.payload_type);
  }
});

test('DSSE spec example', () => {
  assert.equal(Buffer.from(pae('http://example.com/HelloWorld', Buffer.from('hello world'))).toString('latin1'), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
});

function keysOf(doc: any): Map<string, Ed25519Key> {
  const keys = new Map<string, Ed25519Key>();
  for (const k of doc.keys) {
    const key = Ed25519Key.fromSeed(hex(k.seed_hex));
    assert.equal(toHex(key.publicKey), k.public_key_hex);
    assert.equal(key.didKey, k.did_key);
    keys.set(k.name, key);
  }
  return keys;
}

test('signed-payload vectors: this implementation produces the same payload bytes, PAE and signature', {skip: !have && 'no vectors'}, () => {
  const doc = load('signed-payloads.json');
  const keys = keysOf(doc);
  for (const v of doc.vectors) {
    const name = v.payload_type.split('.').pop();
    const fields = structuredClone(v.payload_fields);
    if (fields.request?.payload_hex !== undefined) {
      // a nested SignedPayload given as hex in the vector
      fields.request = {payload_type: fields.request.payload_type, payload: hex(fields.request.payload_hex), signature: hex(fields.request.signature_hex)};
    }
    assert.equal(toHex(encode(name, fields)), v.payload_hex, v.name);
    assert.equal(toHex(pae(v.payload_type, hex(v.payload_hex))), v.pae_hex, v.name);
    const key = keys.get(v.signer)!;
    assert.equal(toHex(key.sign(hex(v.pae_hex))), v.signature_hex, v.name);
    assert.ok(verifyPayload(key.publicKey, {payloadType: v.payload_type, payload: hex(v.payload_hex), signature: hex(v.signature_hex)}));
    const opened = openPayload({payloadType: v.payload_type, payload: hex(v.payload_hex), signature: hex(v.signature_hex)}, name, key.publicKey, v.signer === 'org' ? 'org' : 'agent');
    assert.ok(opened);
  }
});

test('negative vectors: each refused with the expected status and reason', {skip: !have && 'no vectors'}, () => {
  const doc = load('negative.json');
  const keys = keysOf(doc);
  assert.ok(doc.vectors.length >= 10);
  for (const v of doc.vectors) {
    const payload = v.payload_fill ? new Uint8Array(v.payload_fill.count).fill(parseInt(v.payload_fill.byte_hex, 16)) : hex(v.payload_hex);
    const name = v.expected_payload_type.split('.').pop();
    const signer = v.trusted_key === 'org' ? 'org' : 'agent';
    assert.throws(
      () => openPayload({payloadType: v.payload_type, payload, signature: hex(v.signature_hex)}, name, keys.get(v.trusted_key)!.publicKey, signer, v.field),
      (e: unknown) => e instanceof ProtocolError && e.status === v.expected.status && e.reason === v.expected.reason,
      `${v.name}: expected ${v.expected.status}/${v.expected.reason}`,
    );
  }
});
