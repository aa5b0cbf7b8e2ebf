/**
 * Receipts: C2SP tlog-proof texts (c2sp.org/tlog-proof@v1), verified offline:
 *
 *   c2sp.org/tlog-proof@v1
 *   [extra <base64>]
 *   index <decimal>
 *   <base64 inclusion-proof hash>...      (RFC 9162 order, leaf sibling first)
 *   <empty line>
 *   <signed checkpoint note, possibly with cosignatures>
 *
 * The entry's leaf hash SHA-256(0x00 || entry) must be included (RFC 9162 §2.1.3.2)
 * at `index` in the checkpoint's tree, and the checkpoint must carry the log's signature.
 */
import {leafHash, verifyInclusion} from './merkle.js';
import {Checkpoint, MAX_NOTE_BYTES, Note, NoteError, openCheckpoint} from './note.js';

export const PROOF_HEADER = 'c2sp.org/tlog-proof@v1';
export const MAX_PROOF_HASHES = 64;
export const MAX_RECEIPT_BYTES = MAX_NOTE_BYTES + 8 * 1024;

export interface TlogProof {
  index: bigint;
  proof: Uint8Array[];
  checkpointNote: string;
  extra?: Uint8Array;
}

function b64(text: string): Uint8Array {
  const out = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || out.toString('base64') !== text) {
    throw new NoteError('not canonical base64');
  }
  return new Uint8Array(out);
}

/** Parse a tlog-proof; throws NoteError (bounds checked before parsing). */
export function parseTlogProof(text: string): TlogProof {
  if (Buffer.byteLength(text, 'utf8') > MAX_RECEIPT_BYTES) {
    throw new NoteError('receipt too large');
  }
  const blank = text.indexOf('\n\n');
  if (blank < 0) {
    throw new NoteError('a tlog-proof has a header, an empty line and a checkpoint');
  }
  const lines = text.slice(0, blank).split('\n');
  if (lines[0] !== PROOF_HEADER) {
    throw new NoteError(`first line must be ${PROOF_HEADER}`);
  }
  let i = 1;
  let extra: Uint8Array | undefined;
  if (lines[i]?.startsWith('extra ')) {
    extra = b64(lines[i].slice(6));
    i += 1;
  }
  const m = /^index (0|[1-9][0-9]{0,19})$/.exec(lines[i] ?? '');
  if (m === null || BigInt(m[1]) >= 1n << 64n) {
    throw new NoteError('malformed index line');
  }
  const proof = lines.slice(i + 1).map(b64);
  if (proof.length > MAX_PROOF_HASHES || proof.some(p => p.length !== 32)) {
    throw new NoteError('inclusion proof hashes are 32 bytes, at most 64 of them');
  }
  return {index: BigInt(m[1]), proof, checkpointNote: text.slice(blank + 2), extra};
}

export interface VerifiedReceipt {
  index: bigint;
  leafHash: Uint8Array;
  checkpoint: Checkpoint;
  note: Note;
}

/**
 * Verify a receipt for `entry` against the log key `logVkey` (its name is the origin).
 * Throws NoteError naming the first check that failed.
 */
export function verifyReceipt(text: string, entry: Uint8Array, logVkey: string): VerifiedReceipt {
  const proof = parseTlogProof(text);
  const {checkpoint, note} = openCheckpoint(proof.checkpointNote, logVkey);
  const leaf = leafHash(entry);
  if (!verifyInclusion(proof.index, checkpoint.size, leaf, proof.proof, checkpoint.root)) {
    throw new NoteError(`the entry is not included at index ${proof.index} of the checkpoint of size ${checkpoint.size}`);
  }
  return {index: proof.index, leafHash: leaf, checkpoint, note};
}
