/**
 * A TypeScript organization node's directory, peer bundles and agent wallets.
 *
 * Node directory (the same files `accord node init` writes, plus accord-ts.json):
 *
 *   accord-ts.json      {"org_name", "org_did", "listen"}   (listen = HOST:PORT of the status server)
 *   keys/org.jwk        organization Ed25519 key (RFC 8037 JWK; signs envelopes, status lists)
 *   keys/ledger.seed    hex seed of the own log's C2SP signed-note key
 *   tls/ca.pem, tls/node.pem, tls/node.key   organization CA and node certificate (SAN URI = org DID)
 *   peers/<name>.json   pinned peer bundles (signed; verified on load)
 *   agents/<name>.json  agent wallets ({name, did, secretKeyMultibase, credential, ...})
 *   status.json         {"revoked": [index...], "suspended": [index...]} (absent = none)
 *   ledger/             the own append-only log (see log.ts)
 */
import {existsSync, readFileSync, readdirSync, statSync} from 'node:fs';
import {join} from 'node:path';
import canonicalize from 'canonicalize';
import {Ed25519Key, publicKeyFromMultibase, verifyEd25519} from './ed25519.js';
import {parseVkey} from './note.js';

/** Largest bundle / wallet / config file read, bytes. */
export const MAX_FILE_BYTES = 64 * 1024;
const ORG_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const DOMAIN_SUFFIX = 'accord.test';

/** Read a small JSON file (bounded before parsing). */
export function readJson(path: string): any {
  if (statSync(path).size > MAX_FILE_BYTES) {
    throw new Error(`${path} is larger than ${MAX_FILE_BYTES} bytes`);
  }
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** A pinned, verified peer bundle (docs/operator-guide.md, federation/peers.py). */
export interface PeerBundle {
  version: number;
  org_name: string;
  org_did: string;
  verification_method: string;
  public_key_multibase: string;
  did_document: any;
  ca_certificate_pem: string;
  endpoint: string;
  ledger_origin: string;
  ledger_vkey: string;
  witness_vkey: string;
  issued_at: string;
  signature: string;
}

/**
 * Verify a bundle: Ed25519 signature (base64url) by `public_key_multibase` over the
 * RFC 8785 JCS of every member but `signature`, and every name bound to `org_name`.
 * Throws Error naming the failed check.
 */
export function verifyBundle(b: PeerBundle): PeerBundle {
  if (b.version !== 1 || typeof b.org_name !== 'string' || !ORG_NAME.test(b.org_name)) {
    throw new Error('bundle: unsupported version or bad org_name');
  }
  const {signature, ...rest} = b;
  const sig = Buffer.from(String(signature), 'base64url');
  const data = Buffer.from(canonicalize(rest) as string, 'utf8');
  if (!verifyEd25519(publicKeyFromMultibase(b.public_key_multibase), sig, data)) {
    throw new Error(`bundle of ${b.org_name}: signature does not verify`);
  }
  if (b.org_did !== `did:web:${b.org_name}.${DOMAIN_SUFFIX}`) {
    throw new Error('bundle: org_did is not did:web:<org_name>.accord.test');
  }
  if (!b.verification_method.startsWith(b.org_did + '#')) {
    throw new Error('bundle: verification method is not a key of org_did');
  }
  const methods = b.did_document?.verificationMethod;
  if (b.did_document?.id !== b.org_did || !Array.isArray(methods) || methods.length !== 1 ||
      methods[0].id !== b.verification_method || methods[0].publicKeyMultibase !== b.public_key_multibase) {
    throw new Error('bundle: the DID document does not carry exactly the bundle key');
  }
  if (b.ledger_origin !== `${b.org_name}.${DOMAIN_SUFFIX}/ledger` || parseVkey(b.ledger_vkey).name !== b.ledger_origin) {
    throw new Error('bundle: ledger origin / vkey not bound to org_name');
  }
  if (b.witness_vkey && parseVkey(b.witness_vkey).name !== `${b.org_name}.${DOMAIN_SUFFIX}/witness`) {
    throw new Error('bundle: witness vkey not bound to org_name');
  }
  return b;
}

/** An agent wallet (the file `accord agent register` writes). */
export interface Wallet {
  name: string;
  did: string;
  key: Ed25519Key;
  credential: any;
  tlsCertPem?: string;
  tlsKeyPem?: string;
  caPem?: string;
  nodeEndpoint?: string;
}

/** Load a wallet file; throws when the key does not belong to the DID. */
export function loadWallet(path: string): Wallet {
  const w = readJson(path);
  const key = Ed25519Key.fromSecretMultibase(w.secretKeyMultibase);
  if (key.didKey !== w.did) {
    throw new Error(`${path}: the wallet key is not the key of ${w.did}`);
  }
  return {
    name: w.name, did: w.did, key, credential: w.credential,
    tlsCertPem: w.tls_cert_pem, tlsKeyPem: w.tls_key_pem, caPem: w.ca_pem, nodeEndpoint: w.node_endpoint,
  };
}

/** A loaded node directory. */
export class NodeIdentity {
  readonly orgName: string;
  readonly orgDid: string;
  readonly listen: string;
  readonly orgKey: Ed25519Key;
  readonly ledgerKey: Ed25519Key;
  readonly caPem: Buffer;
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
  readonly peers: PeerBundle[];

  constructor(readonly dir: string) {
    const cfg = readJson(join(dir, 'accord-ts.json'));
    if (!ORG_NAME.test(cfg.org_name) || cfg.org_did !== `did:web:${cfg.org_name}.${DOMAIN_SUFFIX}`) {
      throw new Error('accord-ts.json: bad org_name / org_did');
    }
    this.orgName = cfg.org_name;
    this.orgDid = cfg.org_did;
    this.listen = cfg.listen ?? '';
    this.orgKey = Ed25519Key.fromJwk(readJson(join(dir, 'keys', 'org.jwk')));
    this.ledgerKey = Ed25519Key.fromSeed(new Uint8Array(Buffer.from(readFileSync(join(dir, 'keys', 'ledger.seed'), 'utf8').trim(), 'hex')));
    this.caPem = readFileSync(join(dir, 'tls', 'ca.pem'));
    this.certPem = readFileSync(join(dir, 'tls', 'node.pem'));
    this.keyPem = readFileSync(join(dir, 'tls', 'node.key'));
    const peersDir = join(dir, 'peers');
    this.peers = existsSync(peersDir)
      ? readdirSync(peersDir).filter(f => f.endsWith('.json')).sort().map(f => verifyBundle(readJson(join(peersDir, f))))
      : [];
  }

  /** DID URL of the organization key. */
  get verificationMethod(): string {
    return `${this.orgDid}#key-1`;
  }

  /** Origin of the own log. */
  get ledgerOrigin(): string {
    return `${this.orgName}.${DOMAIN_SUFFIX}/ledger`;
  }

  /** A pinned peer by org name or DID; throws UNKNOWN_PEER-like Error when not pinned. */
  peer(nameOrDid: string): PeerBundle {
    const b = this.peers.find(p => p.org_name === nameOrDid || p.org_did === nameOrDid);
    if (b === undefined) {
      throw new Error(`peer ${nameOrDid} is not pinned`);
    }
    return b;
  }

  /** The wallet of a local agent. */
  wallet(name: string): Wallet {
    if (!ORG_NAME.test(name)) {
      throw new Error('bad agent name');
    }
    return loadWallet(join(this.dir, 'agents', `${name}.json`));
  }

  /** Status bits set: {"revoked": [...], "suspended": [...]}. */
  statusBits(): {revoked: number[]; suspended: number[]} {
    const p = join(this.dir, 'status.json');
    const s = existsSync(p) ? readJson(p) : {};
    return {revoked: s.revoked ?? [], suspended: s.suspended ?? []};
  }
}
