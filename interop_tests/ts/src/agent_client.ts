/**
 * An agent talking to its own organization's node (any implementation) through
 * AgentService: BeginSession -> OpenSession (SessionPossession signed by the agent key +
 * a VP for the peer) -> SendRequest (agent-signed RequestBody). The own node wraps the
 * request in its ExchangeEnvelope, verifies the provider's receipt and logs "received".
 *
 * mTLS with the agent's client certificate (SAN URI = its did:key) from the wallet; the
 * node's certificate must chain to the wallet's CA and name the organization DID that
 * issued the agent's credential.
 */
import * as grpc from '@grpc/grpc-js';
import {Agent} from './agent.js';
import {RequestSpec} from './requester.js';
import {services, unary} from './proto.js';

export interface AgentSession {
  session_id: string;
  peer_org: string;
  expires_at: string;
  effective_trust: number;
}

export class AgentClient {
  private readonly client: grpc.Client;
  readonly orgDid: string;

  constructor(readonly agent: Agent) {
    const w = agent.wallet;
    if (!w?.tlsCertPem || !w.tlsKeyPem || !w.caPem || !w.nodeEndpoint) {
      throw new Error('the wallet has no TLS material or node endpoint');
    }
    const issuer = (agent.credential as any)?.issuer;
    this.orgDid = typeof issuer === 'string' ? issuer : issuer?.id;
    const creds = grpc.credentials.createSsl(Buffer.from(w.caPem), Buffer.from(w.tlsKeyPem), Buffer.from(w.tlsCertPem), {
      checkServerIdentity: (_host, cert) => ((cert.subjectaltname ?? '').split(', ').includes(`URI:${this.orgDid}`)
        ? undefined : new Error(`the node certificate does not name ${this.orgDid}`)),
    });
    this.client = new services.AgentService(w.nodeEndpoint, creds);
  }

  close(): void {
    this.client.close();
  }

  /** Open a session with `peer` (org name or DID) through the own node. */
  async openSession(peer: string): Promise<AgentSession> {
    const b: any = await unary(this.client, 'BeginSession', {agent_did: this.agent.did, peer});
    const vp = await this.agent.presentation(b.peer_challenge, b.peer_domain);
    const p = this.agent.possession(b.local_challenge, b.peer_org);
    const r: any = await unary(this.client, 'OpenSession', {
      agent_did: this.agent.did, peer_org: b.peer_org,
      possession: {payload_type: p.payloadType, payload: Buffer.from(p.payload), signature: Buffer.from(p.signature)},
      presentation_json: Buffer.from(JSON.stringify(vp), 'utf8'),
    });
    return {session_id: r.session_id, peer_org: b.peer_org, expires_at: r.expires_at, effective_trust: r.effective_trust};
  }

  /**
   * Sign and send one request; returns the node's answer (outcome, received_leaf_index,
   * receipt_verified) plus `payload`, the parsed data, only when the receipt verified.
   * Throws RpcError for a refusal (a policy denial carries the provider's receipt in
   * its metadata, verified and logged by the home node: `receipt_verified`).
   */
  async send(session: AgentSession, spec: RequestSpec): Promise<any> {
    const {signed} = this.agent.signRequest(spec, session.peer_org);
    const r: any = await unary(this.client, 'SendRequest', {
      session_id: session.session_id,
      request: {payload_type: signed.payloadType, payload: Buffer.from(signed.payload), signature: Buffer.from(signed.signature)},
    });
    // data whose receipt the home node could not verify is not handed out as `payload`
    // (it stays in `outcome.payload_json` for a caller that decides otherwise)
    const payload = r.receipt_verified && r.outcome?.payload_json?.length ? JSON.parse(Buffer.from(r.outcome.payload_json).toString('utf8')) : undefined;
    return {...r, payload};
  }
}
