/**
 * Ed25519 (RFC 8032, pure) over node:crypto, and the key encodings Accord uses:
 * raw 32-byte keys, JWK (RFC 8037 OKP), Multikey (`z` base58btc multibase with the
 * multicodec prefix 0xed01 / 0x8026) and did:key.
 */
import {createPrivateKey, createPublicKey, sign, verify, KeyObject} from 'node:crypto';
import {decode as b58decode, encode as b58encode} from 'base58-universal';

const ED25519_PUB_PREFIX = Uint8Array.of(0xed, 0x01);
const ED25519_PRIV_PREFIX = Uint8Array.of(0x80, 0x26);

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** An Ed25519 signing key. `seed` is the 32-byte private scalar seed of RFC 8032 §5.1.5. */
export class Ed25519Key {
  readonly publicKey: Uint8Array;
  private readonly key: KeyObject;

  private constructor(seed: Uint8Array, publicKey?: Uint8Array) {
    if (seed.length !== 32) {
      throw new Error('an Ed25519 seed is 32 bytes');
    }
    // import the seed as PKCS#8 (RFC 8410: fixed prefix || 32-byte seed); node:crypto then
    // derives the public key, which is checked against a given one
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
    this.key = createPrivateKey({key: pkcs8, format: 'der', type: 'pkcs8'});
    const jwk = createPublicKey(this.key).export({format: 'jwk'}) as {x: string};
    this.publicKey = new Uint8Array(Buffer.from(jwk.x, 'base64url'));
    if (publicKey && Buffer.compare(Buffer.from(publicKey), Buffer.from(this.publicKey)) !== 0) {
      throw new Error('the public key does not belong to the seed');
    }
  }

  /** From a 32-byte seed. Throws on a wrong length. */
  static fromSeed(seed: Uint8Array): Ed25519Key {
    return new Ed25519Key(seed);
  }

  /** From an RFC 8037 OKP JWK with `d` (and `x`, which must match). */
  static fromJwk(jwk: {kty?: string; crv?: string; d?: string; x?: string}): Ed25519Key {
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
      throw new Error('not an Ed25519 private JWK');
    }
    const x = typeof jwk.x === 'string' ? new Uint8Array(Buffer.from(jwk.x, 'base64url')) : undefined;
    return new Ed25519Key(new Uint8Array(Buffer.from(jwk.d, 'base64url')), x);
  }

  /** From a Multikey `secretKeyMultibase` (`z` + base58btc(0x80 0x26 || seed)). */
  static fromSecretMultibase(value: string): Ed25519Key {
    const raw = multibaseDecode(value, ED25519_PRIV_PREFIX);
    return new Ed25519Key(raw.subarray(0, 32));
  }

  /** 64-byte signature over `message`. */
  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, message, this.key));
  }

  /** Multikey `publicKeyMultibase`. */
  get publicKeyMultibase(): string {
    return publicKeyMultibase(this.publicKey);
  }

  /** Multikey `secretKeyMultibase` (the 32-byte seed form). */
  get secretKeyMultibase(): string {
    const jwk = this.key.export({format: 'jwk'}) as {d: string};
    return 'z' + b58encode(Buffer.concat([ED25519_PRIV_PREFIX, Buffer.from(jwk.d, 'base64url')]));
  }

  /** The did:key of this key. */
  get didKey(): string {
    return `did:key:${this.publicKeyMultibase}`;
  }
}

function multibaseDecode(value: string, prefix: Uint8Array): Uint8Array {
  if (typeof value !== 'string' || !value.startsWith('z') || value.length > 120) {
    throw new Error('not a base58btc multibase value');
  }
  const raw = b58decode(value.slice(1));
  if (raw.length !== 34 || raw[0] !== prefix[0] || raw[1] !== prefix[1]) {
    throw new Error('not an Ed25519 Multikey value');
  }
  return raw.subarray(2);
}

/** Multikey `publicKeyMultibase` of a raw 32-byte key. */
export function publicKeyMultibase(publicKey: Uint8Array): string {
  return 'z' + b58encode(Buffer.concat([ED25519_PUB_PREFIX, Buffer.from(publicKey)]));
}

/** The raw 32-byte key of a Multikey `publicKeyMultibase`. Throws on anything else. */
export function publicKeyFromMultibase(value: string): Uint8Array {
  return multibaseDecode(value, ED25519_PUB_PREFIX);
}

/** The raw key of an Ed25519 `did:key`. Throws on any other DID. */
export function publicKeyFromDidKey(did: string): Uint8Array {
  if (!did.startsWith('did:key:')) {
    throw new Error('not a did:key');
  }
  return publicKeyFromMultibase(did.slice('did:key:'.length));
}

/** RFC 8032 verification; false (never a throw) for a wrong-length key or signature. */
export function verifyEd25519(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) {
    return false;
  }
  const key = createPublicKey({key: {kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey)}, format: 'jwk'});
  return verify(null, message, key, signature);
}
