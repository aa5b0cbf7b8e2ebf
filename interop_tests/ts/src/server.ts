/**
 * The requester organization's own small FederationService: GetNodeInfo and GetStatusList
 * (its agents' Bitstring Status List credentials, which providers fetch to check
 * revocation and suspension). Every other RPC answers UNIMPLEMENTED (grpc-js default).
 *
 * mTLS: clients must present a certificate chaining to a pinned peer's CA whose SAN URI
 * is that peer's org DID; anything else is UNAUTHENTICATED / UNKNOWN_PEER or
 * CERTIFICATE_NOT_CHAINED.
 */
import {X509Certificate} from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {NodeIdentity, PeerBundle} from './identity.js';
import {ReceivedLog} from './log.js';
import {services, statusDetails} from './proto.js';
import {addDidDocument, statusListCredential} from './vc.js';
import {SUPPORTED} from './requester.js';

const PURPOSES = ['revocation', 'suspension'];

function fail(code: grpc.status, reason: string, message: string): grpc.ServiceError {
  const md = new grpc.Metadata();
  md.set('grpc-status-details-bin', statusDetails(code, message, reason));
  return Object.assign(new Error(message), {code, details: message, metadata: md}) as grpc.ServiceError;
}

/** The pinned peer the caller's client certificate authenticates, or a ServiceError. */
export function authenticate(identity: NodeIdentity, call: any): PeerBundle | grpc.ServiceError {
  const der: Buffer | undefined = call.getAuthContext?.()?.sslPeerCertificate?.raw;
  if (!der) {
    return fail(grpc.status.UNAUTHENTICATED, 'NO_CLIENT_CERTIFICATE', 'no client certificate');
  }
  const cert = new X509Certificate(der);
  const uris = (cert.subjectAltName ?? '').split(', ').filter(s => s.startsWith('URI:')).map(s => s.slice(4));
  const peer = identity.peers.find(p => uris.length === 1 && p.org_did === uris[0]);
  if (peer === undefined) {
    return fail(grpc.status.UNAUTHENTICATED, 'UNKNOWN_PEER', 'the client certificate names no pinned organization');
  }
  const ca = new X509Certificate(peer.ca_certificate_pem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return fail(grpc.status.UNAUTHENTICATED, 'CERTIFICATE_NOT_CHAINED', `the client certificate is not issued by ${peer.org_name}'s pinned CA`);
  }
  return peer;
}

/** Start the server on `identity.listen`; resolves with the bound port. */
export async function serve(identity: NodeIdentity): Promise<{server: grpc.Server; port: number}> {
  const own = {id: identity.orgDid, verificationMethod: [{id: identity.verificationMethod, type: 'Multikey', controller: identity.orgDid, publicKeyMultibase: identity.orgKey.publicKeyMultibase}], assertionMethod: [identity.verificationMethod]};
  addDidDocument({'@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'], ...own} as any);
  const log = new ReceivedLog(identity.dir, identity.ledgerOrigin, identity.ledgerKey);
  const cache = new Map<string, {bits: string; credential: string}>();
  const server = new grpc.Server({'grpc.max_receive_message_length': 64 * 1024});
  server.addService(services.FederationService.service, {
    GetNodeInfo(call: any, cb: grpc.sendUnaryData<any>) {
      const peer = authenticate(identity, call);
      if (!('org_did' in peer)) {
        return cb(peer);
      }
      cb(null, {
        org_did: identity.orgDid, org_name: identity.orgName, endpoint: identity.listen,
        ledger_vkey: log.vkey, ledger_origin: identity.ledgerOrigin, software: 'accord-ts-requester 0.1.0', ...SUPPORTED, features: [],
      });
    },
    GetStatusList(call: any, cb: grpc.sendUnaryData<any>) {
      const peer = authenticate(identity, call);
      if (!('org_did' in peer)) {
        return cb(peer);
      }
      const purpose = call.request.purpose;
      if (!PURPOSES.includes(purpose)) {
        return cb(fail(grpc.status.INVALID_ARGUMENT, 'MALFORMED_REQUEST', 'purpose must be revocation or suspension'));
      }
      const status = identity.statusBits();
      const bits = (purpose === 'revocation' ? status.revoked : status.suspended).slice().sort((a, b) => a - b);
      const key = JSON.stringify(bits);
      const hit = cache.get(purpose);
      if (hit !== undefined && hit.bits === key) {
        return cb(null, {credential_json: Buffer.from(hit.credential)});
      }
      const url = `https://${identity.orgName}.accord.test/status/${purpose}`;
      statusListCredential(identity.orgKey, identity.orgDid, identity.verificationMethod, url, purpose, bits).then(c => {
        const text = JSON.stringify(c);
        cache.set(purpose, {bits: key, credential: text});
        cb(null, {credential_json: Buffer.from(text)});
      }, (e: unknown) => cb(fail(grpc.status.INTERNAL, 'INTERNAL', String(e))));
    },
  });
  const ca = Buffer.concat([identity.caPem, ...identity.peers.map(p => Buffer.from(p.ca_certificate_pem))]);
  const creds = grpc.ServerCredentials.createSsl(ca, [{private_key: identity.keyPem, cert_chain: identity.certPem}], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(identity.listen, creds, (e, p) => (e ? reject(e) : resolve(p))));
  return {server, port};
}
