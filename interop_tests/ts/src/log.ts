/**
 * The requester's own append-only log: RFC 8785 (JCS) entries, one per line, in
 * `ledger/entries.jsonl`; leaf hash SHA-256(0x00 || entry bytes), tree head per RFC 9162
 * §2.1.1; after each append a C2SP checkpoint (origin `<org>.accord.test/ledger`) signed
 * with the node's ledger key is written to `ledger/checkpoint` (a signed note).
 *
 * Single writer: appends take `ledger/lock` (O_EXCL file); the root is recomputed from
 * every leaf (O(n): this is the SDK's small log, not a tiled server log).
 */
import {closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync} from 'node:fs';
import {join} from 'node:path';
import canonicalize from 'canonicalize';
import {Ed25519Key} from './ed25519.js';
import {leafHash, rootFromLeafHashes} from './merkle.js';
import {keyId, SIG_ED25519} from './note.js';

export class ReceivedLog {
  private readonly dir: string;

  constructor(nodeDir: string, private readonly origin: string, private readonly key: Ed25519Key) {
    this.dir = join(nodeDir, 'ledger');
    mkdirSync(this.dir, {recursive: true, mode: 0o700});
  }

  /** The C2SP vkey of this log. */
  get vkey(): string {
    const id = keyId(this.origin, SIG_ED25519, this.key.publicKey);
    return `${this.origin}+${Buffer.from(id).toString('hex')}+${Buffer.concat([Uint8Array.of(SIG_ED25519), this.key.publicKey]).toString('base64')}`;
  }

  /** Every entry's bytes, in order. */
  entries(): Buffer[] {
    const p = join(this.dir, 'entries.jsonl');
    if (!existsSync(p)) {
      return [];
    }
    return readFileSync(p).toString('utf8').split('\n').filter(l => l !== '').map(l => Buffer.from(l, 'utf8'));
  }

  /** Append one entry (a JSON object, stored as its JCS); returns its leaf index and the new checkpoint. */
  append(entry: Record<string, unknown>): {index: number; checkpoint: string} {
    const bytes = Buffer.from(canonicalize(entry) as string, 'utf8');
    if (bytes.includes(0x0a)) {
      throw new Error('a JCS entry never holds a newline');
    }
    const lock = join(this.dir, 'lock');
    const fd = openSync(lock, 'wx', 0o600);
    try {
      const log = openSync(join(this.dir, 'entries.jsonl'), 'a', 0o600);
      try {
        writeSync(log, Buffer.concat([bytes, Buffer.from('\n')]));
        fsyncSync(log);
      } finally {
        closeSync(log);
      }
      const leaves = this.entries().map(leafHash);
      const checkpoint = this.sign(`${this.origin}\n${leaves.length}\n${Buffer.from(rootFromLeafHashes(leaves)).toString('base64')}\n`);
      const tmp = join(this.dir, 'checkpoint.tmp');
      writeFileSync(tmp, checkpoint, {mode: 0o600});
      renameSync(tmp, join(this.dir, 'checkpoint'));
      return {index: leaves.length - 1, checkpoint};
    } finally {
      closeSync(fd);
      rmSync(lock);
    }
  }

  private sign(text: string): string {
    const id = keyId(this.origin, SIG_ED25519, this.key.publicKey);
    const sig = Buffer.concat([id, this.key.sign(Buffer.from(text, 'utf8'))]).toString('base64');
    return `${text}\n\u2014 ${this.origin} ${sig}\n`;
  }
}
