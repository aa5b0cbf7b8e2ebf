// Ledger formats checked against the published vectors the Python ledger is tested with
// (tests/ledger/vectors/*/values.json): both implementations accept and reject the same values.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {REPO} from '../src/paths.js';
import {leafHash, rootFromLeafHashes, verifyConsistency, verifyInclusion} from '../src/merkle.js';
import {checkQuorum, cosignatureVerifier, cosignedMessage, keyId as kid, openCheckpoint, parseCheckpoint, parseNote, parseVkey, verifyCosignature, verifyNoteSignature} from '../src/note.js';
import {parseTlogProof, verifyReceipt} from '../src/receipt.js';
import {Ed25519Key} from '../src/ed25519.js';

const VEC = join(REPO, 'tests', 'ledger', 'vectors');
function values(group: string): Record<string, any> {
  return JSON.parse(readFileSync(join(VEC, group, 'values.json'), 'utf8'));
}
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

test('RFC 6962 reference tree: leaf hashes and roots of every prefix', () => {
  const v = values('merkle-testonly-constants');
  const leaves = (v.RFC6962_LEAVES as string[]).map(l => leafHash(hex(l)));
  // indexed by tree size 0..8 (index 0: the empty tree, SHA-256(""))
  (v.RFC6962_ROOTS as string[]).forEach((root, size) => {
    assert.equal(Buffer.from(rootFromLeafHashes(leaves.slice(0, size))).toString('hex'), root);
  });
});

test('RFC 6962 inclusion proofs verify, and fail with a flipped hash or the wrong index', () => {
  const c = values('merkle-testonly-constants');
  const leaves = (c.RFC6962_LEAVES as string[]).map(l => leafHash(hex(l)));
  const cases = values('merkle-proofgen').RFC6962_INCLUSION as {leaf_index_1based: number; tree_size: number; proof: string[]}[];
  assert.ok(cases.length > 3);
  for (const k of cases) {
    const root = rootFromLeafHashes(leaves.slice(0, k.tree_size));
    const i = BigInt(k.leaf_index_1based - 1);
    const proof = k.proof.map(hex);
    assert.ok(verifyInclusion(i, BigInt(k.tree_size), leaves[Number(i)], proof, root), JSON.stringify(k));
    if (proof.length > 0) {
      const bad = proof.map(p => Uint8Array.from(p));
      bad[0][5] ^= 1;
      assert.ok(!verifyInclusion(i, BigInt(k.tree_size), leaves[Number(i)], bad, root));
    }
    if (k.tree_size > 1) {
      const j = (i + 1n) % BigInt(k.tree_size);
      assert.ok(!verifyInclusion(j, BigInt(k.tree_size), leaves[Number(i)], proof, root));
    }
    assert.ok(!verifyInclusion(BigInt(k.tree_size), BigInt(k.tree_size), leaves[Number(i)], proof, root));
  }
});

test('transparency-dev/merkle testdata: every inclusion case (happy path and each bad one)', () => {
  const cases = JSON.parse(readFileSync(join(VEC, 'merkle-testdata', 'cases.json'), 'utf8')) as {kind: string; path: string; case: any}[];
  let n = 0;
  for (const {kind, path, case: d} of cases) {
    if (kind !== 'inclusion') {
      continue;
    }
    const b = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
    const ok = verifyInclusion(BigInt(d.leafIdx ?? 0), BigInt(d.treeSize ?? 0), b(d.leafHash ?? ''), (d.proof ?? []).map(b), b(d.root ?? ''));
    assert.equal(ok, d.wantErr !== true, path);
    n += 1;
  }
  assert.ok(n >= 5, `only ${n} inclusion cases`);
});

test('RFC 6962 consistency proofs verify, and fail tampered or with swapped roots', () => {
  const c = values('merkle-testonly-constants');
  const leaves = (c.RFC6962_LEAVES as string[]).map(l => leafHash(hex(l)));
  const cases = values('merkle-proofgen').RFC6962_CONSISTENCY as {size1: number; size2: number; proof: string[]}[];
  assert.ok(cases.length > 3);
  for (const k of cases) {
    const r1 = rootFromLeafHashes(leaves.slice(0, k.size1));
    const r2 = rootFromLeafHashes(leaves.slice(0, k.size2));
    const proof = k.proof.map(hex);
    assert.ok(verifyConsistency(BigInt(k.size1), BigInt(k.size2), r1, r2, proof), JSON.stringify(k));
    if (proof.length > 0) {
      const bad = proof.map(p => Uint8Array.from(p));
      bad[bad.length - 1][0] ^= 1;
      assert.ok(!verifyConsistency(BigInt(k.size1), BigInt(k.size2), r1, r2, bad));
    }
    if (k.size1 !== k.size2) {
      assert.ok(!verifyConsistency(BigInt(k.size1), BigInt(k.size2), r2, r1, proof));
    }
  }
});

test('transparency-dev/merkle testdata: every consistency case', () => {
  const cases = JSON.parse(readFileSync(join(VEC, 'merkle-testdata', 'cases.json'), 'utf8')) as {kind: string; path: string; case: any}[];
  let n = 0;
  for (const {kind, path, case: d} of cases) {
    if (kind !== 'consistency') {
      continue;
    }
    const b = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
    const ok = verifyConsistency(BigInt(d.size1 ?? 0), BigInt(d.size2 ?? 0), b(d.root1 ?? ''), b(d.root2 ?? ''), (d.proof ?? []).map(b));
    assert.equal(ok, d.wantErr !== true, path);
    n += 1;
  }
  assert.ok(n >= 5, `only ${n} consistency cases`);
});

test('C2SP signed-note example and Go sumdb note vectors', () => {
  const s = values('c2sp-signed-note');
  verifyNoteSignature(parseNote(s.C2SP_NOTE), parseVkey(s.C2SP_NOTE_VKEY));
  const g = values('golang-mod-sumdb-note');
  const peter = parseVkey(g.GO_PETER_VKEY);
  const enoch = parseVkey(g.GO_ENOCH_VKEY);
  const both = parseNote(g.GO_TEXT + '\n' + g.GO_PETER_SIG + g.GO_ENOCH_SIG);
  verifyNoteSignature(both, peter);
  verifyNoteSignature(both, enoch);
  // another key's signature under Peter's name/ID does not verify
  const swapped = parseNote(g.GO_TEXT + '\n' + g.GO_PETER_SIG.replace('x08go', 'x08gp'));
  assert.throws(() => verifyNoteSignature(swapped, peter));
  for (const bad of g.GO_BAD_VKEYS as string[]) {
    assert.throws(() => parseVkey(bad), bad);
  }
  assert.throws(() => parseNote(g.GO_TEXT + '\n' + g.GO_BAD_SIG_LINE + '\n'));
  // a modified text fails
  assert.throws(() => verifyNoteSignature(parseNote(g.GO_TEXT.replace('answer', 'Answer') + '\n' + g.GO_PETER_SIG), peter));
});

test('C2SP tlog-checkpoint example and sumdb checkpoint', () => {
  const c = values('c2sp-tlog-checkpoint');
  const f = values('formats-log-note');
  // sumdb's key name differs from its origin: Accord's openCheckpoint refuses that, so check the parts
  const sumdb = parseNote(f.SUMDB_CHECKPOINT);
  verifyNoteSignature(sumdb, parseVkey(f.SUMDB_VKEY));
  assert.equal(parseCheckpoint(sumdb.text).origin, f.SUMDB_ORIGIN);
  assert.throws(() => openCheckpoint(f.SUMDB_CHECKPOINT, f.SUMDB_VKEY));
  const text = `${c.C2SP_EXAMPLE_ORIGIN}\n${c.C2SP_EXAMPLE_SIZE}\n${c.C2SP_EXAMPLE_ROOT_B64}\n`;
  const cp = parseCheckpoint(text);
  assert.equal(cp.size, BigInt(c.C2SP_EXAMPLE_SIZE));
  assert.throws(() => parseCheckpoint(`${c.C2SP_EXAMPLE_ORIGIN}\n0${c.C2SP_EXAMPLE_SIZE}\n${c.C2SP_EXAMPLE_ROOT_B64}\n`));
});

test('witness vectors: monkeys checkpoints and cosignature/v1 timestamps', () => {
  const w = values('witness-witness-test');
  const v = parseVkey(w.MONKEYS_VKEY);
  for (const cp of [w.MONKEYS_INIT, w.MONKEYS_NEXT]) {
    verifyNoteSignature(parseNote(cp), v);
  }
  const cos = values('formats-note-cosigv1');
  assert.equal(Buffer.from(cosignatureVerifier(cos.COSIG_VKEY_NATIVE).keyId).toString('hex'), 'da77ade7');
  const raw = Buffer.from(cos.COSIG_TS_SIG, 'base64');
  assert.equal(raw.subarray(4, 12).readBigUInt64BE(), BigInt(cos.COSIG_TS_UNIX));
});

test('real Armored Witness cosignatures verify (vkeys published as 0x01, used as cosignature/v1)', () => {
  const aw = values('distributor-witnesses-prod').AW_WITNESSES as Record<string, string>;
  const dist = values('distributor-readme');
  const names = (note: string) => Object.values(aw).map(cosignatureVerifier).filter(v => verifyCosignature(parseNote(note), v) !== null).map(v => v.name).sort();
  assert.deepEqual(names(dist.AW_FTLOG_CHECKPOINT), ['ArmoredWitness-floral-sky', 'ArmoredWitness-weathered-rain']);
  assert.deepEqual(names(dist.PIXEL_CHECKPOINT), ['ArmoredWitness-autumn-wood', 'ArmoredWitness-small-breeze']);
  assert.equal(Buffer.from(cosignatureVerifier(aw['ArmoredWitness-small-breeze']).keyId).toString('hex'), '9d1ab951');
  // a cosignature moved onto another checkpoint body fails
  assert.throws(() => names(dist.AW_FTLOG_CHECKPOINT.replace('\n59\n', '\n60\n')));
});

test('cosignature/v1 round trip, quorum and tampering', () => {
  const log = Ed25519Key.fromSeed(new Uint8Array(32).fill(7));
  const wit = Ed25519Key.fromSeed(new Uint8Array(32).fill(9));
  const {vkey: logVkey, signLine} = noteKey('example.test/log', 0x01, log);
  const {vkey: witVkey} = noteKey('example.test/witness', 0x04, wit);
  const leaves = [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')].map(leafHash);
  const root = rootFromLeafHashes(leaves);
  const text = `example.test/log\n3\n${Buffer.from(root).toString('base64')}\n`;
  const ts = 1_700_000_000n;
  const tsb = Buffer.alloc(8);
  tsb.writeBigUInt64BE(ts);
  const wid = parseVkey(witVkey).keyId;
  const cosig = Buffer.concat([wid, tsb, wit.sign(cosignedMessage(text, ts))]).toString('base64');
  const note = `${text}\n${signLine(text)}\u2014 example.test/witness ${cosig}\n`;
  const {note: parsed} = openCheckpoint(note, logVkey);
  assert.equal(verifyCosignature(parsed, parseVkey(witVkey)), ts);
  assert.deepEqual(checkQuorum(parsed, [witVkey], 1, ts), ['example.test/witness']);
  assert.throws(() => checkQuorum(parsed, [witVkey], 2, ts));
  // future-dated cosignatures do not count
  assert.throws(() => checkQuorum(parsed, [witVkey], 1, ts - 3600n));
  // a tlog-proof over the same checkpoint
  const proofText = `c2sp.org/tlog-proof@v1\nindex 1\n${Buffer.from(leaves[0]).toString('base64')}\n${Buffer.from(leaves[2]).toString('base64')}\n\n${note}`;
  const r = verifyReceipt(proofText, Buffer.from('b'), logVkey);
  assert.equal(r.index, 1n);
  assert.throws(() => verifyReceipt(proofText, Buffer.from('x'), logVkey));
  assert.throws(() => verifyReceipt(proofText.replace('index 1', 'index 01'), Buffer.from('b'), logVkey));
  assert.throws(() => verifyReceipt(proofText.replace('index 1', 'index 2'), Buffer.from('b'), logVkey));
  assert.equal(parseTlogProof(proofText).proof.length, 2);
  // the tampered checkpoint text fails the log signature
  assert.throws(() => verifyReceipt(proofText.replace('\n3\n', '\n4\n'), Buffer.from('b'), logVkey));
});

function noteKey(name: string, type: number, key: Ed25519Key) {
  const keyId = kid(name, type, key.publicKey);
  const vkey = `${name}+${Buffer.from(keyId).toString('hex')}+${Buffer.concat([Uint8Array.of(type), key.publicKey]).toString('base64')}`;
  const signLine = (text: string) => `\u2014 ${name} ${Buffer.concat([keyId, key.sign(Buffer.from(text))]).toString('base64')}\n`;
  return {vkey, signLine};
}
