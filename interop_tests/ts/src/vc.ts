/**
 * W3C VC 2.0 over the Digital Bazaar libraries (the versions pinned in package.json):
 * an agent's Verifiable Presentation (eddsa-rdfc-2022, proofPurpose authentication,
 * challenge + domain) and the organization's Bitstring Status List credentials.
 *
 * Contexts come from the repository's bundle (credentials/contexts/); did:key documents
 * are built locally and the organization's own did:web document comes from its bundle.
 * Nothing is fetched.
 */
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {gzipSync} from 'node:zlib';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {cryptosuite as rdfcSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {Ed25519Key} from './ed25519.js';
import {REPO} from './paths.js';

const contextsDir = join(REPO, 'credentials', 'contexts');
const CONTEXTS = new Map<string, unknown>();
for (const [url, file] of Object.entries(JSON.parse(readFileSync(join(contextsDir, 'index.json'), 'utf8')) as Record<string, string>)) {
  CONTEXTS.set(url, JSON.parse(readFileSync(join(contextsDir, file), 'utf8')));
}
const DID_V1 = 'https://www.w3.org/ns/did/v1';
const MULTIKEY_V1 = 'https://w3id.org/security/multikey/v1';
const VC_V2 = 'https://www.w3.org/ns/credentials/v2';

const didDocuments = new Map<string, any>();

/** Make a did:web document known to the loader (an organization's, from its peer bundle). */
export function addDidDocument(doc: {id: string}): void {
  didDocuments.set(doc.id, doc);
}

async function didKeyDocument(did: string): Promise<any> {
  const mb = did.slice('did:key:'.length);
  const key = await Ed25519Multikey.from({id: `${did}#${mb}`, controller: did, publicKeyMultibase: mb});
  const method = await key.export({publicKey: true, includeContext: false});
  return {
    '@context': [DID_V1, MULTIKEY_V1], id: did, verificationMethod: [method],
    authentication: [method.id], assertionMethod: [method.id],
  };
}

async function documentLoader(url: string): Promise<any> {
  if (CONTEXTS.has(url)) {
    return {contextUrl: null, documentUrl: url, document: CONTEXTS.get(url)};
  }
  const [did, fragment] = url.split('#');
  let doc = didDocuments.get(did);
  if (doc === undefined && did.startsWith('did:key:')) {
    doc = await didKeyDocument(did);
    didDocuments.set(did, doc);
  }
  if (doc === undefined) {
    throw new Error(`document not bundled (never fetched): ${url}`);
  }
  if (!fragment) {
    return {contextUrl: null, documentUrl: url, document: doc};
  }
  const method = (doc.verificationMethod ?? []).find((m: any) => m.id === url);
  if (!method) {
    throw new Error(`unknown verification method ${url}`);
  }
  return {contextUrl: null, documentUrl: url, document: {'@context': MULTIKEY_V1, ...method}};
}

async function signerFor(key: Ed25519Key, id: string, controller: string): Promise<any> {
  const k = await Ed25519Multikey.from({
    id, controller, publicKeyMultibase: key.publicKeyMultibase, secretKeyMultibase: key.secretKeyMultibase,
  });
  return k.signer();
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A VP holding `credentials`, holder = the agent's did:key, signed eddsa-rdfc-2022 with
 * proofPurpose "authentication", `challenge` and `domain` (the provider's org DID).
 */
export async function createPresentation(agentKey: Ed25519Key, credentials: unknown[], challenge: string, domain: string): Promise<any> {
  const holder = agentKey.didKey;
  const suite = new DataIntegrityProof({
    signer: await signerFor(agentKey, `${holder}#${agentKey.publicKeyMultibase}`, holder),
    cryptosuite: rdfcSuite, date: isoSeconds(new Date()),
  });
  const presentation = vc.createPresentation({verifiableCredential: structuredClone(credentials), holder});
  return vc.signPresentation({presentation, suite, challenge, domain, documentLoader});
}

/** W3C Bitstring Status List §3.1: bit i is the (i mod 8)-th most significant bit of byte i/8. */
export function encodeStatusList(lengthBits: number, setIndices: number[]): string {
  const bytes = Buffer.alloc(lengthBits / 8);
  for (const i of setIndices) {
    if (!Number.isInteger(i) || i < 0 || i >= lengthBits) {
      throw new Error(`status index ${i} is outside the list`);
    }
    bytes[i >> 3] |= 0x80 >> (i & 7);
  }
  return 'u' + gzipSync(bytes).toString('base64url');
}

/** The status list length (bits): 131,072, the spec's minimum for herd privacy. */
export const STATUS_LIST_LENGTH = 131072;

/**
 * The organization's signed BitstringStatusListCredential for `purpose`
 * ("revocation" | "suspension") with the bits `setIndices`, issued by `orgDid`
 * with `verificationMethod` (the org key, `<did>#key-1`), eddsa-rdfc-2022.
 */
export async function statusListCredential(orgKey: Ed25519Key, orgDid: string, verificationMethod: string, url: string, purpose: string, setIndices: number[]): Promise<any> {
  const now = isoSeconds(new Date());
  const credential = {
    '@context': [VC_V2],
    id: url,
    type: ['VerifiableCredential', 'BitstringStatusListCredential'],
    issuer: orgDid,
    validFrom: now,
    credentialSubject: {
      id: `${url}#list`, type: 'BitstringStatusList', statusPurpose: purpose,
      encodedList: encodeStatusList(STATUS_LIST_LENGTH, setIndices),
    },
  };
  const suite = new DataIntegrityProof({signer: await signerFor(orgKey, verificationMethod, orgDid), cryptosuite: rdfcSuite, date: now});
  return vc.issue({credential, suite, documentLoader});
}
