/**
 * C2SP signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint)
 * and Ed25519 witness cosignatures (c2sp.org/tlog-cosignature, cosignature/v1).
 *
 * A note is `text` (UTF-8, ending in "\n"), an empty line, then signature lines
 * "— <key name> <base64(key ID || signature)>\n" (U+2014 EM DASH, space). The key ID
 * is the first 4 bytes of SHA-256(key name || "\n" || signature type || public key);
 * type 0x01 is an Ed25519 note signature over `text`, type 0x04 an Ed25519
 * cosignature/v1 whose signature bytes are key ID || uint64 BE timestamp || signature,
 * over "cosignature/v1\ntime <timestamp>\n" || text. A verifier key ("vkey") is
 * "<name>+<hex key ID>+<base64(type || public key)>".
 */
import {createHash} from 'node:crypto';
import {verifyEd25519} from './ed25519.js';

export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;
/** Largest note accepted, bytes (C2SP does not bound it; Accord does before parsing). */
export const MAX_NOTE_BYTES = 1 << 20;
/** Most signature lines in a note (c2sp.org/signed-note: verifiers MAY reject more than 100). */
export const MAX_SIGNATURES = 100;
const EM_DASH = '\u2014 ';

export class NoteError extends Error {}

/** Fewer valid cosignatures than the quorum (every one present verified). */
export class QuorumError extends NoteError {}

function b64strict(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new NoteError('not canonical base64');
  }
  const out = Buffer.from(text, 'base64');
  if (out.toString('base64') !== text) {
    throw new NoteError('not canonical base64');
  }
  return new Uint8Array(out);
}

function validName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name);
}

/** The 4-byte key ID of (name, type, public key). */
export function keyId(name: string, type: number, publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(Buffer.from(name + '\n', 'utf8')).update(Uint8Array.of(type)).update(publicKey).digest()).subarray(0, 4);
}

/** A parsed verifier key. */
export interface Verifier {
  name: string;
  type: number;
  keyId: Uint8Array;
  publicKey: Uint8Array;
}

/** Parse a vkey; throws NoteError unless it is a well-formed Ed25519 (0x01) or cosignature/v1 (0x04) key. */
export function parseVkey(vkey: string): Verifier {
  // <name>+<hex8>+<base64>; the base64 part may itself hold '+'
  const m = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(vkey);
  const parts = m === null ? [] : [m[1], m[2], m[3]];
  if (vkey.length > 512 || parts.length !== 3 || !validName(parts[0]) || !/^[0-9a-f]{8}$/.test(parts[1])) {
    throw new NoteError('malformed verifier key');
  }
  const raw = b64strict(parts[2]);
  if (raw.length !== 33 || (raw[0] !== SIG_ED25519 && raw[0] !== SIG_COSIGNATURE_V1)) {
    throw new NoteError('unsupported verifier key type or length');
  }
  const v: Verifier = {name: parts[0], type: raw[0], publicKey: raw.subarray(1), keyId: new Uint8Array()};
  v.keyId = keyId(v.name, v.type, v.publicKey);
  if (Buffer.from(v.keyId).toString('hex') !== parts[1]) {
    throw new NoteError('verifier key ID does not match its key');
  }
  return v;
}

/**
 * A cosignature/v1 verifier from a witness vkey. A key published with type 0x01
 * (as witnesses' Ed25519 keys often are) is used as type 0x04 with its key ID
 * recomputed for 0x04 (c2sp.org/tlog-cosignature: the key ID is over the signature type).
 */
export function cosignatureVerifier(vkey: string): Verifier {
  const v = parseVkey(vkey);
  if (v.type === SIG_COSIGNATURE_V1) {
    return v;
  }
  return {name: v.name, type: SIG_COSIGNATURE_V1, publicKey: v.publicKey, keyId: keyId(v.name, SIG_COSIGNATURE_V1, v.publicKey)};
}

/** One signature line. */
export interface NoteSignature {
  name: string;
  keyId: Uint8Array;
  /** the bytes after the key ID (type specific) */
  body: Uint8Array;
}

/** A parsed (unverified) note. */
export interface Note {
  text: string;
  signatures: NoteSignature[];
}

/** Parse a signed note; throws NoteError on a malformed one (bounds checked first). */
export function parseNote(note: string): Note {
  if (Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES) {
    throw new NoteError('note too large');
  }
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) {
    throw new NoteError('a note is text, an empty line and signature lines, each ending in a newline');
  }
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) {
    throw new NoteError('too many signatures');
  }
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    if (!line.startsWith(EM_DASH)) {
      throw new NoteError('a signature line starts with an em dash and a space');
    }
    const rest = line.slice(EM_DASH.length);
    const space = rest.indexOf(' ');
    const name = rest.slice(0, space);
    if (space < 0 || !validName(name)) {
      throw new NoteError('malformed signature line');
    }
    const raw = b64strict(rest.slice(space + 1));
    if (raw.length < 5) {
      throw new NoteError('signature too short');
    }
    signatures.push({name, keyId: raw.subarray(0, 4), body: raw.subarray(4)});
  }
  return {text, signatures};
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** The signature lines of `note` made by `v` (same name and key ID). */
function linesOf(note: Note, v: Verifier): NoteSignature[] {
  return note.signatures.filter(s => s.name === v.name && sameId(s.keyId, v.keyId));
}

/**
 * Verify the Ed25519 (0x01) signature of `v` on `note`. Throws NoteError when the key
 * has no line, more than one, or a line that does not verify.
 */
export function verifyNoteSignature(note: Note, v: Verifier): void {
  if (v.type !== SIG_ED25519) {
    throw new NoteError('not a note signing key');
  }
  const lines = linesOf(note, v);
  if (lines.length !== 1) {
    throw new NoteError(lines.length === 0 ? `no signature by ${v.name}` : `more than one signature by ${v.name}`);
  }
  if (!verifyEd25519(v.publicKey, lines[0].body, Buffer.from(note.text, 'utf8'))) {
    throw new NoteError(`signature by ${v.name} does not verify`);
  }
}

/** The cosignature/v1 signed message for a checkpoint text at `timestamp` (seconds). */
export function cosignedMessage(text: string, timestamp: bigint): Uint8Array {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${text}`, 'utf8');
}

/**
 * The timestamp of `v`'s valid cosignature on `note`, or null when it has none.
 * Throws NoteError when the witness has more than one line or a line that does not verify.
 */
export function verifyCosignature(note: Note, v: Verifier): bigint | null {
  if (v.type !== SIG_COSIGNATURE_V1) {
    throw new NoteError('not a cosignature/v1 key');
  }
  const lines = linesOf(note, v);
  if (lines.length === 0) {
    return null;
  }
  if (lines.length > 1) {
    throw new NoteError(`more than one cosignature by ${v.name}`);
  }
  const body = lines[0].body;
  if (body.length !== 72) {
    throw new NoteError(`cosignature by ${v.name} is not timestamp || signature`);
  }
  const ts = Buffer.from(body.subarray(0, 8)).readBigUInt64BE();
  if (!verifyEd25519(v.publicKey, body.subarray(8), cosignedMessage(note.text, ts))) {
    throw new NoteError(`cosignature by ${v.name} does not verify`);
  }
  return ts;
}

/** A checkpoint body (c2sp.org/tlog-checkpoint). */
export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Uint8Array;
  extensions: string[];
}

/** Parse a checkpoint note text; throws NoteError on a malformed one. */
export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') {
    throw new NoteError('a checkpoint is origin, size, root hash and optional extension lines');
  }
  const [origin, size, root, ...rest] = lines.slice(0, -1);
  if (origin === '' || !/^(0|[1-9][0-9]{0,19})$/.test(size) || BigInt(size) >= 1n << 64n) {
    throw new NoteError('malformed checkpoint origin or size');
  }
  const rootBytes = b64strict(root);
  if (rootBytes.length !== 32) {
    throw new NoteError('checkpoint root is not 32 bytes');
  }
  if (rest.some(l => l === '')) {
    throw new NoteError('empty checkpoint extension line');
  }
  return {origin, size: BigInt(size), root: rootBytes, extensions: rest};
}

/**
 * Open a signed checkpoint: parse the note, check the log's signature (vkey `logVkey`,
 * whose name must be the origin) and return the checkpoint and the parsed note.
 */
export function openCheckpoint(noteText: string, logVkey: string): {checkpoint: Checkpoint; note: Note} {
  const v = parseVkey(logVkey);
  const note = parseNote(noteText);
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== v.name) {
    throw new NoteError(`checkpoint origin ${checkpoint.origin} is not the log ${v.name}`);
  }
  verifyNoteSignature(note, v);
  return {checkpoint, note};
}

/**
 * Require `k` distinct witnesses among `witnessVkeys` with a valid cosignature on `note`
 * (c2sp.org/tlog-policy "k of n"), none dated more than `maxFutureSeconds` ahead of `now`.
 * Returns the names that cosigned; throws NoteError when the quorum is not met.
 */
export function checkQuorum(note: Note, witnessVkeys: string[], k: number, nowSeconds: bigint, maxFutureSeconds = 300n): string[] {
  const signed: string[] = [];
  for (const vkey of witnessVkeys) {
    const v = cosignatureVerifier(vkey);
    const ts = verifyCosignature(note, v);
    if (ts !== null && ts <= nowSeconds + maxFutureSeconds) {
      signed.push(v.name);
    }
  }
  if (signed.length < k) {
    throw new QuorumError(`witness quorum not met: ${signed.length} of ${k} required cosignatures`);
  }
  return signed;
}
