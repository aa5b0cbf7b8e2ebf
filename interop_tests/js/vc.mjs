#!/usr/bin/env node
// Accord interop harness over the Digital Bazaar reference libraries (versions pinned in
// package.json / package-lock.json). Reads one JSON request on stdin, writes one JSON
// result on stdout. Subcommands:
//
//   issue        {credential, publicKeyMultibase, secretKeyMultibase, cryptosuite, created?}
//                -> {credential}            (issuer must be the key's did:key)
//   verify       {credential, now?}         -> {verified, errors: [string]}
//   sign-presentation    {credentials, publicKeyMultibase, secretKeyMultibase, cryptosuite,
//                         challenge, domain, created?}  -> {presentation}  (holder = did:key)
//   verify-presentation  {presentation, challenge, domain, now?} -> {verified, errors}
//   canonize-batch       {datasets: [N-Quads]} -> {canonical: [N-Quads | {error}]}
//                        (rdf-canonize 5, RDFC-1.0: the reference canonicalizer)
//   verify-loop  {credential, n, now?}      -> {verified, n, seconds, per_verify_ms}
//   verify-presentation-loop {presentation, challenge, domain, n, now?} -> (as verify-loop)
//   issue-loop   {credential, publicKeyMultibase, secretKeyMultibase, cryptosuite, n}
//                -> {n, seconds, per_issue_ms}
//
// Contexts come from Accord's bundle (credentials/contexts/index.json), served by a
// static document loader; did:key documents are built locally. Nothing is fetched.
import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join} from 'node:path';
import {performance} from 'node:perf_hooks';
import {fileURLToPath} from 'node:url';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {cryptosuite as rdfcSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {
  createSignCryptosuite as jcsSign,
  createVerifyCryptosuite as jcsVerify
} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';

const require = createRequire(import.meta.url);
// rdf-canonize is the reference RDFC-1.0 implementation (a dependency of jsonld).
const rdfCanonize = require('rdf-canonize');

const here = dirname(fileURLToPath(import.meta.url));
const contextsDir = join(here, '..', '..', 'credentials', 'contexts');
const index = JSON.parse(readFileSync(join(contextsDir, 'index.json'), 'utf8'));
const CONTEXTS = new Map();
for(const [url, file] of Object.entries(index)) {
  CONTEXTS.set(url, JSON.parse(readFileSync(join(contextsDir, file), 'utf8')));
}
const DID_V1 = 'https://www.w3.org/ns/did/v1';
const MULTIKEY_V1 = 'https://w3id.org/security/multikey/v1';

const didDocuments = new Map();

async function didKeyDocument(did) {
  if(!didDocuments.has(did)) {
    didDocuments.set(did, await buildDidKeyDocument(did));
  }
  return didDocuments.get(did);
}

async function buildDidKeyDocument(did) {
  const publicKeyMultibase = did.slice('did:key:'.length);
  const key = await Ed25519Multikey.from({
    id: `${did}#${publicKeyMultibase}`, controller: did, publicKeyMultibase
  });
  const method = await key.export({publicKey: true, includeContext: false});
  return {
    '@context': [DID_V1, MULTIKEY_V1],
    id: did,
    verificationMethod: [method],
    authentication: [method.id],
    assertionMethod: [method.id],
    capabilityInvocation: [method.id],
    capabilityDelegation: [method.id]
  };
}

async function documentLoader(url) {
  if(CONTEXTS.has(url)) {
    return {contextUrl: null, documentUrl: url, document: CONTEXTS.get(url)};
  }
  if(url.startsWith('did:key:')) {
    const [did, fragment] = url.split('#');
    const doc = await didKeyDocument(did);
    if(!fragment) {
      return {contextUrl: null, documentUrl: url, document: doc};
    }
    const method = doc.verificationMethod.find(m => m.id === url);
    if(!method) {
      throw new Error(`unknown verification method ${url}`);
    }
    return {
      contextUrl: null, documentUrl: url,
      document: {'@context': MULTIKEY_V1, ...method}
    };
  }
  throw new Error(`document not bundled (never fetched): ${url}`);
}

function signSuite(name) {
  if(name === 'eddsa-rdfc-2022') {
    return rdfcSuite;
  }
  if(name === 'eddsa-jcs-2022') {
    return jcsSign();
  }
  throw new Error(`unsupported cryptosuite ${name}`);
}

async function signer(req) {
  const did = `did:key:${req.publicKeyMultibase}`;
  const key = await Ed25519Multikey.from({
    id: `${did}#${req.publicKeyMultibase}`,
    controller: did,
    publicKeyMultibase: req.publicKeyMultibase,
    secretKeyMultibase: req.secretKeyMultibase
  });
  return key.signer();
}

async function issue(req) {
  const suite = new DataIntegrityProof({
    signer: await signer(req), cryptosuite: signSuite(req.cryptosuite),
    date: req.created
  });
  const credential = await vc.issue({
    credential: structuredClone(req.credential), suite, documentLoader, now: req.now
  });
  return {credential};
}

const verifySuites = [
  new DataIntegrityProof({cryptosuite: rdfcSuite}),
  new DataIntegrityProof({cryptosuite: jcsVerify()})
];

async function verifyOnce(req) {
  const result = await vc.verifyCredential({
    credential: req.credential, suite: verifySuites, documentLoader, now: req.now
  });
  const errors = [];
  if(result.error) {
    errors.push(String(result.error.message || result.error));
  }
  for(const r of result.results || []) {
    if(r.error) {
      errors.push(String(r.error.message || r.error));
    }
  }
  return {verified: Boolean(result.verified), errors};
}

async function signPresentation(req) {
  const holder = `did:key:${req.publicKeyMultibase}`;
  const suite = new DataIntegrityProof({
    signer: await signer(req), cryptosuite: signSuite(req.cryptosuite),
    date: req.created
  });
  const presentation = vc.createPresentation({
    verifiableCredential: structuredClone(req.credentials), holder, now: req.now
  });
  return {
    presentation: await vc.signPresentation({
      presentation, suite, challenge: req.challenge, domain: req.domain, documentLoader
    })
  };
}

async function verifyPresentation(req) {
  const result = await vc.verify({
    presentation: req.presentation, suite: verifySuites, documentLoader,
    challenge: req.challenge, domain: req.domain, now: req.now
  });
  const errors = [];
  if(result.error) {
    errors.push(String(result.error.message || result.error));
  }
  for(const part of [result.presentationResult, ...(result.credentialResults || [])]) {
    for(const r of (part && part.results) || []) {
      if(r.error) {
        errors.push(String(r.error.message || r.error));
      }
    }
  }
  return {verified: Boolean(result.verified), errors};
}

async function timed(n, fn) {
  // warm-up: contexts processed, caches filled, JIT compiled
  for(let i = 0; i < Math.min(50, n); ++i) {
    await fn();
  }
  const start = performance.now();
  let last;
  for(let i = 0; i < n; ++i) {
    last = await fn();
  }
  return {last, seconds: (performance.now() - start) / 1000};
}

async function main() {
  const command = process.argv[2];
  const req = JSON.parse(readFileSync(0, 'utf8'));
  let out;
  if(command === 'issue') {
    out = await issue(req);
  } else if(command === 'verify') {
    out = await verifyOnce(req);
  } else if(command === 'sign-presentation') {
    out = await signPresentation(req);
  } else if(command === 'verify-presentation') {
    out = await verifyPresentation(req);
  } else if(command === 'canonize-batch') {
    const canonical = [];
    for(const nquads of req.datasets) {
      try {
        canonical.push(await rdfCanonize.canonize(nquads, {
          algorithm: 'RDFC-1.0', inputFormat: 'application/n-quads',
          format: 'application/n-quads'
        }));
      } catch(e) {
        canonical.push({error: String(e && e.message || e)});
      }
    }
    out = {canonical};
  } else if(command === 'verify-loop') {
    const {last, seconds} = await timed(req.n, () => verifyOnce(req));
    out = {verified: last.verified, n: req.n, seconds, per_verify_ms: seconds * 1000 / req.n};
  } else if(command === 'verify-presentation-loop') {
    const {last, seconds} = await timed(req.n, () => verifyPresentation(req));
    out = {verified: last.verified, n: req.n, seconds, per_verify_ms: seconds * 1000 / req.n};
  } else if(command === 'issue-loop') {
    const {seconds} = await timed(req.n, () => issue(req));
    out = {n: req.n, seconds, per_issue_ms: seconds * 1000 / req.n};
  } else {
    throw new Error(`unknown command ${command}`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch(e => {
  process.stdout.write(JSON.stringify({error: String(e && e.message || e)}) + '\n');
  process.exitCode = 2;
});
