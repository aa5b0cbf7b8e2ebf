/**
 * The agent SDK: an agent's did:key, its AgentCredential, its Verifiable Presentations
 * and its signed requests (SignedPayload over RequestBody, WIRE.md).
 */
import {randomBytes} from 'node:crypto';
import {Ed25519Key} from './ed25519.js';
import {loadWallet, Wallet} from './identity.js';
import {SignedPayload, signPayload} from './pae.js';
import {encode} from './proto.js';
import {createPresentation} from './vc.js';

export const REQUEST_BODY_TYPE = 'accord.federation.v1.RequestBody';
export const SESSION_POSSESSION_TYPE = 'accord.federation.v1.SessionPossession';

/** RequestBody as the agent signs it (field names as in the .proto). */
export interface RequestBody {
  contract_id: string;
  purpose: string;
  resource: string;
  subject: string;
  fields: string[];
  provider_org: string;
  agent_did: string;
  nonce: string;
  timestamp_ms: number;
  aggregate_json: string;
}

export class Agent {
  constructor(readonly did: string, readonly key: Ed25519Key, readonly credential: unknown, readonly wallet?: Wallet) {
    if (key.didKey !== did) {
      throw new Error('the key is not the key of the agent DID');
    }
  }

  /** From a wallet file (`agents/<name>.json`). */
  static fromWallet(path: string): Agent {
    const w = loadWallet(path);
    return new Agent(w.did, w.key, w.credential, w);
  }

  /** A VP of the AgentCredential for (challenge, domain), eddsa-rdfc-2022, proofPurpose authentication. */
  presentation(challenge: string, domain: string): Promise<unknown> {
    return createPresentation(this.key, [this.credential], challenge, domain);
  }

  /** Build and sign a RequestBody addressed to `providerOrg` (fresh nonce, current time). */
  signRequest(spec: {contract_id: string; purpose: string; resource: string; subject?: string; fields?: string[]; aggregate?: unknown}, providerOrg: string): {body: RequestBody; signed: SignedPayload} {
    const body: RequestBody = {
      contract_id: spec.contract_id, purpose: spec.purpose, resource: spec.resource,
      subject: spec.subject ?? '*', fields: spec.fields ?? [], provider_org: providerOrg, agent_did: this.did,
      nonce: randomBytes(16).toString('base64url'), timestamp_ms: Date.now(),
      aggregate_json: spec.aggregate === undefined ? '' : JSON.stringify(spec.aggregate),
    };
    return {body, signed: signPayload(this.key, REQUEST_BODY_TYPE, encode('RequestBody', {...body}))};
  }

  /** SessionPossession for the own node's challenge (AgentService.OpenSession). */
  possession(challenge: string, peerOrg: string): SignedPayload {
    return signPayload(this.key, SESSION_POSSESSION_TYPE, encode('SessionPossession', {agent_did: this.did, challenge, peer_org: peerOrg}));
  }
}
