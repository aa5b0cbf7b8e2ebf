/**
 * The requester side of an Accord organization node (docs/protocol.md; WIRE.md):
 *
 *   NodeInfo negotiation -> GetChallenge -> OpenSession (the agent's VP) ->
 *   Exchange (agent-signed RequestBody inside the org-signed ExchangeEnvelope) ->
 *   verify the Outcome's receipt (tlog-proof, entry bound to this exchange) ->
 *   wait for the provider's witnessed checkpoint and re-verify inclusion under it ->
 *   append a "received" entry to the own log.
 *
 * mTLS: the client certificate is the node's (SAN URI = org DID); the server must chain
 * to the CA pinned in the peer's bundle and carry the peer's org DID as SAN URI.
 */
import {createHash, randomBytes} from 'node:crypto';
import {existsSync, readFileSync, renameSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import * as grpc from '@grpc/grpc-js';
import canonicalize from 'canonicalize';
import {Agent} from './agent.js';
import {NodeIdentity, PeerBundle} from './identity.js';
import {ReceivedLog} from './log.js';
import {leafHash, verifyConsistency, verifyInclusion} from './merkle.js';
import {checkQuorum, NoteError, openCheckpoint, QuorumError} from './note.js';
import {ProtocolError, SignedPayload, signPayload} from './pae.js';
import {encode, RpcError, services, unary} from './proto.js';
import {verifyReceipt} from './receipt.js';
import {addDidDocument} from './vc.js';

export const REQUEST_BODY = 'accord.federation.v1.RequestBody';
export const EXCHANGE_ENVELOPE = 'accord.federation.v1.ExchangeEnvelope';
export const SUPPORTED = {
  protocol_versions: ['accord.federation.v1'],
  cryptosuites: ['eddsa-rdfc-2022'],
  signature_algorithms: ['ed25519'],
  ledger_formats: ['c2sp-tlog-checkpoint', 'c2sp-tlog-proof', 'rfc9162-sha256'],
};

/** What an agent asks for (RequestBody fields the agent chooses). */
export interface RequestSpec {
  contract_id: string;
  purpose: string;
  resource: string;
  subject?: string;
  fields?: string[];
  /** aggregate query object (docs/protocol.md "Aggregate queries"); JSON-encoded on the wire */
  aggregate?: unknown;
}

/** An open session at a provider. */
export interface Session {
  peer: PeerBundle;
  agent: Agent;
  session_id: string;
  expires_at: string;
  effective_trust: number;
}

/** Result of one exchange, allowed or refused. */
export interface ExchangeResult {
  decision: 'allow' | 'deny';
  outcome?: any;
  payload?: unknown;
  error?: {status: string; reason: string; metadata: Record<string, string>; message: string};
  receipt_verified: boolean;
  witnessed?: {size: string; witnesses: string[]};
  received_leaf_index: number;
  received_checkpoint: string;
}

/**
 * docs/spec/accord-v1.md §5 (R-NEG-3): the peer's NodeInfo must name the pinned DID and,
 * checked in this order, share a protocol version, a VC cryptosuite and a signature
 * algorithm with this implementation, and offer every ledger format it needs to verify
 * receipts. At most 64 entries of each list are read. Throws ProtocolError
 * FAILED_PRECONDITION / UNKNOWN_PEER | UNSUPPORTED_VERSION | UNSUPPORTED_CRYPTOSUITE |
 * UNSUPPORTED_ALGORITHM | UNSUPPORTED_LEDGER_FORMAT.
 */
export function checkNodeInfo(info: any, peer: {org_did: string; org_name: string}): void {
  if (info.org_did !== peer.org_did) {
    throw new ProtocolError('FAILED_PRECONDITION', 'UNKNOWN_PEER', `node info names ${info.org_did}, not ${peer.org_did}`);
  }
  const list = (field: string): string[] => (Array.isArray(info[field]) ? info[field].slice(0, 64) : []);
  const checks: [keyof typeof SUPPORTED, string][] = [
    ['protocol_versions', 'UNSUPPORTED_VERSION'], ['cryptosuites', 'UNSUPPORTED_CRYPTOSUITE'],
    ['signature_algorithms', 'UNSUPPORTED_ALGORITHM'],
  ];
  for (const [field, reason] of checks) {
    const theirs = list(field);
    if (!theirs.some(x => SUPPORTED[field].includes(x))) {
      throw new ProtocolError('FAILED_PRECONDITION', reason, `${peer.org_name} offers ${field} ${JSON.stringify(theirs)}; this node speaks ${JSON.stringify(SUPPORTED[field])}`);
    }
  }
  const formats = list('ledger_formats');
  const missing = SUPPORTED.ledger_formats.filter(f => !formats.includes(f));
  if (missing.length > 0) {
    throw new ProtocolError('FAILED_PRECONDITION', 'UNSUPPORTED_LEDGER_FORMAT', `${peer.org_name} does not offer the ledger formats ${missing.join(', ')} this node needs to verify receipts`);
  }
}

/** Bounds on a provider's Outcome, checked before anything in it is parsed. */
export const OUTCOME_LIMITS = {
  payloadBytes: 1 << 20,
  names: 256,
  nameChars: 256,
  tlogProofBytes: 64 * 1024,
  entryBytes: 65535,
};

/**
 * Refuse an outcome of unreasonable size: ReceiptError OUTCOME_TOO_LARGE naming the member
 * (payload, each list's length and longest string, ids, tlog-proof, entry, leaf hash, a
 * non-finite τ).
 */
export function checkOutcomeSize(outcome: any, limits = OUTCOME_LIMITS): void {
  const tooLarge = (name: string, size: number, limit: number) =>
    new ReceiptError('OUTCOME_TOO_LARGE', `outcome.${name} is ${size}, more than ${limit}`);
  if ((outcome.payload_json?.length ?? 0) > limits.payloadBytes) {
    throw tooLarge('payload_json', outcome.payload_json.length, limits.payloadBytes);
  }
  for (const name of ['released_fields', 'stripped_fields', 'reasons', 'obligations']) {
    const values: string[] = outcome[name] ?? [];
    if (values.length > limits.names) {
      throw tooLarge(name, values.length, limits.names);
    }
    const longest = Math.max(0, ...values.map(v => v.length));
    if (longest > limits.nameChars) {
      throw tooLarge(name, longest, limits.nameChars);
    }
  }
  for (const name of ['disclosure_id', 'decision_hash', 'decision']) {
    if (String(outcome[name] ?? '').length > limits.nameChars) {
      throw tooLarge(name, String(outcome[name]).length, limits.nameChars);
    }
  }
  const r = outcome.receipt ?? {};
  if (Buffer.byteLength(r.tlog_proof ?? '', 'utf8') > limits.tlogProofBytes) {
    throw tooLarge('receipt.tlog_proof', Buffer.byteLength(r.tlog_proof, 'utf8'), limits.tlogProofBytes);
  }
  if ((r.entry?.length ?? 0) > limits.entryBytes) {
    throw tooLarge('receipt.entry', r.entry.length, limits.entryBytes);
  }
  if ((r.leaf_hash?.length ?? 0) > 32) {
    throw tooLarge('receipt.leaf_hash', r.leaf_hash.length, 32);
  }
  if (!Number.isFinite(outcome.effective_trust)) {
    throw new ReceiptError('OUTCOME_TOO_LARGE', 'outcome.effective_trust is not finite');
  }
}

/** Refusal of a provider's outcome (FAILED_PRECONDITION / RECEIPT_MISMATCH and kin). */
export class ReceiptError extends Error {
  readonly status = 'FAILED_PRECONDITION';
  constructor(readonly reason: string, message: string, readonly metadata: Record<string, string> = {}) {
    super(message);
  }
}

/** Receipt refusals that withhold the outcome (spec §7.3 steps 1, 3, 4; R-RCP-5). */
const REFUSING = new Set(['OUTCOME_TOO_LARGE', 'RECEIPT_MISMATCH', 'PEER_LOG_INCONSISTENT']);
/** Most receipt checkpoints kept per provider log (R-RCP-4). */
const MAX_RECEIPT_CHECKPOINTS = 4096;

/**
 * RFC 4648 §4 base64 decoded strictly (R-RCP-7): only the alphabet, padding only at the end
 * and only as needed; undefined for anything else (Buffer.from(s, 'base64') skips what it
 * does not know, so a corrupted value could decode to the true entry).
 */
export function strictBase64(text: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    return undefined;
  }
  const out = Buffer.from(text, 'base64');
  return out.toString('base64') === text ? out : undefined;
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * response_digest (spec §7.3, R-RCP-3): lowercase hex SHA-256 of `Outcome.payload_json`
 * exactly as the provider sent it (SHA-256 of the empty string when empty). Never a
 * re-serialization.
 */
export function payloadDigest(payloadJson: Uint8Array): string {
  return sha256Hex(payloadJson ?? new Uint8Array());
}

/** Compare the provider's logged entry with what this requester knows; throws ReceiptError. */
export function bindEntry(entryBytes: Uint8Array, expected: Record<string, unknown>): any {
  let entry: any;
  try {
    entry = JSON.parse(Buffer.from(entryBytes).toString('utf8'));
  } catch {
    throw new ReceiptError('RECEIPT_MISMATCH', 'the receipt entry is not JSON');
  }
  if (canonicalize(entry) !== Buffer.from(entryBytes).toString('utf8')) {
    throw new ReceiptError('RECEIPT_MISMATCH', 'the receipt entry is not RFC 8785 canonical JSON');
  }
  const bad: string[] = [];
  for (const [k, want] of Object.entries(expected)) {
    const got = entry[k];
    const ok = k === 'kind' && Array.isArray(want) ? want.includes(got) : JSON.stringify(got) === JSON.stringify(want);
    if (!ok) {
      bad.push(k);
    }
  }
  if (bad.length > 0) {
    throw new ReceiptError('RECEIPT_MISMATCH', `the provider's logged entry differs from this exchange in ${bad.sort().join(', ')}`, {mismatch: bad.join(',')});
  }
  return entry;
}

export class RequesterNode {
  readonly log: ReceivedLog;
  private readonly clients = new Map<string, grpc.Client>();

  /**
   * @param identity the node directory
   * @param witnessQuorum cosignatures required on the provider's checkpoint, from the
   *   witnesses of pinned peers other than the provider (capped at their number)
   */
  constructor(readonly identity: NodeIdentity, readonly witnessQuorum = 1) {
    this.log = new ReceivedLog(identity.dir, identity.ledgerOrigin, identity.ledgerKey);
    addDidDocument(identity.peers.find(p => p.org_did === identity.orgDid)?.did_document ?? {id: ''});
  }

  /** The FederationService client for a peer (mTLS; server identity = the peer's org DID). */
  client(peer: PeerBundle): grpc.Client {
    let c = this.clients.get(peer.org_did);
    if (c === undefined) {
      const creds = grpc.credentials.createSsl(Buffer.from(peer.ca_certificate_pem), this.identity.keyPem, this.identity.certPem, {
        checkServerIdentity: (_host, cert) => {
          const sans = (cert.subjectaltname ?? '').split(', ');
          return sans.includes(`URI:${peer.org_did}`) ? undefined : new Error(`server certificate does not name ${peer.org_did}`);
        },
      });
      // an Outcome is at most ~1.2 MiB within OUTCOME_LIMITS; refuse anything far larger at the transport
      c = new services.FederationService(peer.endpoint, creds, {'grpc.max_receive_message_length': 4 * 1024 * 1024});
      this.clients.set(peer.org_did, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) {
      c.close();
    }
    this.clients.clear();
  }

  /**
   * Read the peer's NodeInfo and refuse a peer with nothing in common (WIRE.md
   * "Negotiation"): ProtocolError FAILED_PRECONDITION / UNSUPPORTED_VERSION |
   * UNSUPPORTED_CRYPTOSUITE | UNSUPPORTED_ALGORITHM.
   */
  async negotiate(peer: PeerBundle): Promise<any> {
    const info: any = await unary(this.client(peer), 'GetNodeInfo', {});
    checkNodeInfo(info, peer);
    return info;
  }

  /** GetChallenge + OpenSession with the agent's VP bound to the challenge and the peer's DID. */
  async openSession(agent: Agent, peerName: string): Promise<Session> {
    const peer = this.identity.peer(peerName);
    await this.negotiate(peer);
    const c = this.client(peer);
    const ch: any = await unary(c, 'GetChallenge', {agent_did: agent.did});
    if (ch.domain !== peer.org_did) {
      throw new ProtocolError('FAILED_PRECONDITION', 'WRONG_DOMAIN', `challenge domain ${ch.domain} is not ${peer.org_did}`);
    }
    const vp = await agent.presentation(ch.challenge, ch.domain);
    const r: any = await unary(c, 'OpenSession', {presentation_json: Buffer.from(JSON.stringify(vp), 'utf8')});
    return {peer, agent, session_id: r.session_id, expires_at: r.expires_at, effective_trust: r.effective_trust};
  }

  /** The org-signed ExchangeEnvelope around an agent-signed request (WIRE.md). */
  envelope(session: Session, request: SignedPayload): SignedPayload {
    const bytes = encode('ExchangeEnvelope', {
      session_id: session.session_id,
      request: {payload_type: request.payloadType, payload: request.payload, signature: request.signature},
      requester_org: this.identity.orgDid,
    });
    return signPayload(this.identity.orgKey, EXCHANGE_ENVELOPE, bytes);
  }

  /** One request in a session: sign, send, verify the receipt, log "received". */
  async exchange(session: Session, spec: RequestSpec, opts: {waitWitnessedMs?: number} = {}): Promise<ExchangeResult> {
    const {body, signed} = session.agent.signRequest(spec, session.peer.org_did);
    const env = this.envelope(session, signed);
    const requestDigest = sha256Hex(signed.payload);
    const base = {
      kind: 'received', time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      provider_org: session.peer.org_did, requester_org: this.identity.orgDid,
      requester_agent: body.agent_did, provider_agent: '', contract_id: body.contract_id, contract_hash: '',
      purpose: body.purpose, fields_requested: body.fields, request_digest: requestDigest,
    };
    let outcome: any;
    try {
      const r: any = await unary(this.client(session.peer), 'Exchange', {
        envelope: {payload_type: env.payloadType, payload: Buffer.from(env.payload), signature: Buffer.from(env.signature)},
      });
      outcome = r.outcome;
    } catch (err) {
      if (!(err instanceof RpcError) || !err.metadata.tlog_proof || !err.metadata.disclosure_id) {
        throw err; // refused before any decision: nothing logged at the provider, nothing here
      }
      return this.loggedDenial(session, err, base, opts);
    }
    const receipt = outcome.receipt ?? {};
    const entry: Buffer = receipt.entry ?? Buffer.alloc(0);
    let verified = false;
    let witnessed: ExchangeResult['witnessed'];
    let reason = '';
    let refusal = '';
    let refusalMeta: Record<string, string> = {};
    try {
      checkOutcomeSize(outcome);
      if (Buffer.compare(Buffer.from(leafHash(entry)), receipt.leaf_hash ?? Buffer.alloc(0)) !== 0) {
        throw new ReceiptError('RECEIPT_MISMATCH', 'receipt leaf_hash is not SHA-256(0x00 || entry)');
      }
      const v = verifyReceipt(receipt.tlog_proof, entry, session.peer.ledger_vkey);
      if (String(v.index) !== String(receipt.leaf_index)) {
        throw new ReceiptError('RECEIPT_MISMATCH', 'receipt leaf_index differs from the tlog-proof index');
      }
      const expected: Record<string, unknown> = {
        kind: ['disclosure'], disclosure_id: outcome.disclosure_id, provider_org: session.peer.org_did,
        requester_org: this.identity.orgDid, requester_agent: body.agent_did, contract_id: body.contract_id,
        purpose: body.purpose, request_digest: requestDigest, response_digest: payloadDigest(outcome.payload_json),
        fields_released: outcome.released_fields, fields_stripped: outcome.stripped_fields,
        record_count: outcome.record_count, decision: outcome.decision, reason: outcome.reasons.join(','),
        decision_hash: outcome.decision_hash, effective_trust: outcome.effective_trust,
      };
      if (!body.aggregate_json) {
        expected.fields_requested = body.fields;
      }
      bindEntry(entry, expected);
      this.observeReceipt(session.peer, v.checkpoint, receipt.tlog_proof);
      witnessed = await this.witnessed(session.peer, v.index, v.leafHash, v.checkpoint, opts.waitWitnessedMs ?? 0);
      verified = true;
    } catch (err) {
      if (!(err instanceof ReceiptError) && !(err instanceof NoteError)) {
        throw err;
      }
      reason = err instanceof ReceiptError ? err.reason : 'RECEIPT_INVALID';
      refusal = err.message;
      refusalMeta = err instanceof ReceiptError ? err.metadata : {};
    }
    const written = this.log.append({
      ...base,
      disclosure_id: verified ? outcome.disclosure_id : 'rcv_' + requestDigest.slice(0, 32),
      fields_released: verified ? outcome.released_fields : [],
      fields_stripped: verified ? outcome.stripped_fields : [],
      record_count: verified ? outcome.record_count : 0,
      decision: verified ? outcome.decision : 'deny',
      reason, decision_hash: verified ? outcome.decision_hash : '',
      response_digest: verified ? payloadDigest(outcome.payload_json) : '',
      effective_trust: verified ? outcome.effective_trust : 0,
      provider_leaf_hash: entry.length <= OUTCOME_LIMITS.entryBytes ? Buffer.from(leafHash(entry)).toString('base64') : '',
      extra: witnessed ? {witnessed_size: witnessed.size} : {},
    });
    // an outcome whose receipt did not verify is not handed to the agent (its data is withheld)
    const payload = verified && outcome.payload_json?.length ? JSON.parse(Buffer.from(outcome.payload_json).toString('utf8')) : undefined;
    return {
      decision: verified ? outcome.decision : 'deny', outcome, payload, receipt_verified: verified, witnessed,
      received_leaf_index: written.index, received_checkpoint: written.checkpoint,
      ...(verified ? {} : {error: {status: 'FAILED_PRECONDITION', reason, metadata: refusalMeta, message: `provider receipt refused: ${refusal}`}}),
    };
  }

  private async loggedDenial(session: Session, err: RpcError, base: Record<string, unknown>, opts: {waitWitnessedMs?: number}): Promise<ExchangeResult> {
    const m = err.metadata;
    if ((m.entry_b64 ?? '').length > (4 * OUTCOME_LIMITS.entryBytes) / 3 + 4 || (m.tlog_proof ?? '').length > OUTCOME_LIMITS.tlogProofBytes) {
      throw new ReceiptError('OUTCOME_TOO_LARGE', 'the refusal carries an entry or receipt larger than the bounds');
    }
    const entry = strictBase64(m.entry_b64 ?? '');
    let verified = false;
    let witnessed: ExchangeResult['witnessed'];
    let refused: ReceiptError | undefined;
    try {
      if (entry === undefined) {
        throw new ReceiptError('RECEIPT_MISMATCH', 'the refusal\'s entry_b64 is not strict base64', {mismatch: 'entry'});
      }
      const v = verifyReceipt(m.tlog_proof, entry, session.peer.ledger_vkey);
      if (m.leaf_index !== undefined && m.leaf_index !== String(v.index)) {
        throw new ReceiptError('RECEIPT_MISMATCH', 'denial leaf_index differs from the tlog-proof index');
      }
      bindEntry(entry, {
        kind: ['denial', 'audit_denial'], disclosure_id: m.disclosure_id, provider_org: session.peer.org_did,
        requester_org: this.identity.orgDid, requester_agent: base.requester_agent, contract_id: base.contract_id,
        purpose: base.purpose, request_digest: base.request_digest, decision: 'deny', reason: err.reason,
        decision_hash: m.decision_hash ?? '', fields_released: [], record_count: 0,
      });
      this.observeReceipt(session.peer, v.checkpoint, m.tlog_proof);
      witnessed = await this.witnessed(session.peer, v.index, v.leafHash, v.checkpoint, opts.waitWitnessedMs ?? 0);
      verified = true;
    } catch (e) {
      if (!(e instanceof ReceiptError) && !(e instanceof NoteError)) {
        throw e;
      }
      // R-RCP-5/R-RCP-7: a receipt refused in step 1, 3 or 4 is not passed on; one that merely
      // does not verify (step 2) passes the provider's reason on, unverified
      if (e instanceof ReceiptError && REFUSING.has(e.reason)) {
        refused = e;
      }
    }
    const reason = refused ? refused.reason : verified ? err.reason : 'RECEIPT_INVALID';
    const written = this.log.append({
      ...base,
      disclosure_id: verified ? m.disclosure_id : 'rcv_' + String(base.request_digest).slice(0, 32),
      fields_released: [], fields_stripped: [], record_count: 0, decision: 'deny',
      reason, decision_hash: verified ? (m.decision_hash ?? '') : '',
      response_digest: '', effective_trust: 0,
      provider_leaf_hash: entry ? Buffer.from(leafHash(entry)).toString('base64') : '',
      extra: {provider_reason: err.reason.slice(0, 200), ...(witnessed ? {witnessed_size: witnessed.size} : {})},
    });
    if (refused) {
      return {
        decision: 'deny', receipt_verified: false,
        error: {status: refused.status, reason: refused.reason, message: `provider refusal's receipt refused: ${refused.message}`,
          metadata: {...refused.metadata, provider_reason: err.reason.slice(0, 200), received_leaf_index: String(written.index)}},
        received_leaf_index: written.index, received_checkpoint: written.checkpoint,
      };
    }
    return {
      decision: 'deny', receipt_verified: verified, witnessed,
      error: {status: err.status, reason: err.reason, metadata: m, message: err.message},
      received_leaf_index: written.index, received_checkpoint: written.checkpoint,
    };
  }

  /**
   * Wait (up to `waitMs`) until the provider's latest witnessed checkpoint covers `index`,
   * then check it: the log's signature, `witnessQuorum` cosignatures from the witnesses of
   * pinned peers other than the provider, the entry's inclusion under its root
   * (GetInclusionProof at its size), and its consistency with the receipt's checkpoint and
   * with the provider's witnessed checkpoints seen before (checkConsistent). Returns undefined when not witnessed in time.
   * Throws NoteError when what the provider serves does not verify (log signature, a
   * known witness's cosignature), ReceiptError PEER_LOG_INCONSISTENT when the witnessed
   * tree does not hold the entry: the outcome is then refused like a bad receipt.
   */
  async witnessed(peer: PeerBundle, index: bigint, leaf: Uint8Array, receipt: {size: bigint; root: Uint8Array}, waitMs: number): Promise<ExchangeResult['witnessed']> {
    if (waitMs <= 0) {
      return undefined;
    }
    const witnesses = this.identity.peers.filter(p => p.org_did !== peer.org_did && p.witness_vkey).map(p => p.witness_vkey);
    if (witnesses.length === 0) {
      return undefined;
    }
    const k = Math.max(1, Math.min(this.witnessQuorum, witnesses.length));
    const deadline = Date.now() + waitMs;
    for (;;) {
      let r: any;
      try {
        r = await unary(this.client(peer), 'QueryEntries', {limit: 1});
      } catch (e) {
        if (e instanceof RpcError) {
          return undefined; // the provider does not answer now: the receipt stays unwitnessed (it verified offline)
        }
        throw e;
      }
      const {checkpoint, note} = openCheckpoint(r.signed_checkpoint, peer.ledger_vkey);
      let names: string[] | undefined;
      try {
        names = checkQuorum(note, witnesses, k, BigInt(Math.floor(Date.now() / 1000)));
      } catch (e) {
        if (!(e instanceof QuorumError)) {
          throw e; // a cosignature by a known witness that does not verify: evidence, not a delay
        }
        names = undefined; // not (yet) witnessed by enough of the federation's witnesses
      }
      if (names !== undefined && checkpoint.size > index) {
        const proof: any = await unary(this.client(peer), 'GetInclusionProof', {leaf_index: String(index), tree_size: String(checkpoint.size)});
        if (!verifyInclusion(index, checkpoint.size, leaf, proof.hashes.map((h: Buffer) => new Uint8Array(h)), checkpoint.root)) {
          throw new ReceiptError('PEER_LOG_INCONSISTENT', `entry ${index} is not included under the witnessed checkpoint of size ${checkpoint.size}`);
        }
        if (!(await this.checkConsistent(peer, receipt, checkpoint.size, checkpoint.root))) {
          return undefined; // no consistency proof now: not counted as witnessed
        }
        return {size: String(checkpoint.size), witnesses: names};
      }
      if (Date.now() > deadline) {
        return undefined;
      }
      await new Promise(res => setTimeout(res, 250));
    }
  }

  /**
   * Are the provider's trees (size1, root1) and (size2, root2) one log (RFC 9162 §2.1.4.2,
   * either order; equal sizes need equal roots)? null when the provider gives no proof now.
   */
  private async consistent(peer: PeerBundle, size1: bigint, root1: Uint8Array, size2: bigint, root2: Uint8Array): Promise<boolean | null> {
    if (size1 === size2) {
      return Buffer.compare(Buffer.from(root1), Buffer.from(root2)) === 0;
    }
    const [s1, s2, r1, r2] = size1 < size2 ? [size1, size2, root1, root2] : [size2, size1, root2, root1];
    let proof: any;
    try {
      proof = await unary(this.client(peer), 'GetConsistencyProof', {size1: String(s1), size2: String(s2)});
    } catch (e) {
      if (e instanceof RpcError) {
        return null;
      }
      throw e;
    }
    return verifyConsistency(s1, s2, r1, r2, proof.hashes.map((h: Buffer) => new Uint8Array(h)));
  }

  /**
   * The provider's log must only grow: the witnessed checkpoint must be consistent with the
   * receipt's checkpoint and with the largest witnessed checkpoint of this provider verified
   * before (kept in `ledger/peer-logs.json` as {origin: {size, root}}). Returns false when the
   * provider gives no proof now; throws ReceiptError PEER_LOG_INCONSISTENT on a fork or
   * rollback (two signed trees that are not one log: equivocation).
   */
  private async checkConsistent(peer: PeerBundle, receipt: {size: bigint; root: Uint8Array}, size: bigint, root: Uint8Array): Promise<boolean> {
    const path = join(this.identity.dir, 'ledger', 'peer-logs.json');
    const book: Record<string, {size: string; root: string}> = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
    const seen = book[peer.ledger_origin];
    const against: [string, bigint, Uint8Array][] = [['the receipt\'s', receipt.size, receipt.root]];
    if (seen !== undefined) {
      against.push(['the witnessed', BigInt(seen.size), new Uint8Array(Buffer.from(seen.root, 'base64'))]);
    }
    for (const [what, s1, r1] of against) {
      const ok = await this.consistent(peer, s1, r1, size, root);
      if (ok === null) {
        return false;
      }
      if (!ok) {
        throw new ReceiptError('PEER_LOG_INCONSISTENT', `${peer.ledger_origin}: the witnessed checkpoint of size ${size} is not consistent with ${what} checkpoint of size ${s1}`);
      }
    }
    if (seen === undefined || BigInt(seen.size) < size) {
      book[peer.ledger_origin] = {size: String(size), root: Buffer.from(root).toString('base64')};
      writeFileSync(path + '.tmp', JSON.stringify(book), {mode: 0o600});
      renameSync(path + '.tmp', path);
    }
    return true;
  }

  /**
   * R-RCP-4: every verified receipt checkpoint of a provider's log is kept (per origin, by
   * size, in `ledger/peer-receipts.json`, at most MAX_RECEIPT_CHECKPOINTS sizes, the smallest
   * dropped first); a second root at a size already seen is PEER_LOG_INCONSISTENT, both
   * receipts (tlog-proof text, with their signed checkpoints) are kept as equivocation
   * evidence, and the log is refused from then on.
   * Throws ReceiptError PEER_LOG_INCONSISTENT.
   */
  private observeReceipt(peer: PeerBundle, checkpoint: {size: bigint; root: Uint8Array}, proofText: string): void {
    const path = join(this.identity.dir, 'ledger', 'peer-receipts.json');
    type Log = {inconsistent: string; evidence: string[]; sizes: Record<string, [string, string]>};
    const book: Record<string, Log> = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
    const log: Log = book[peer.ledger_origin] ?? {inconsistent: '', evidence: [], sizes: {}};
    if (log.inconsistent) {
      throw new ReceiptError('PEER_LOG_INCONSISTENT', `${peer.ledger_origin} was found inconsistent: ${log.inconsistent}`, {origin: peer.ledger_origin});
    }
    const size = String(checkpoint.size);
    const root = Buffer.from(checkpoint.root).toString('base64');
    const note = proofText;
    const held = log.sizes[size];
    let error: ReceiptError | undefined;
    if (held !== undefined && held[0] !== root) {
      log.inconsistent = `two roots at size ${size}`;
      log.evidence = [held[1], note];
      error = new ReceiptError('PEER_LOG_INCONSISTENT', `${peer.ledger_origin}: two roots at size ${size}`, {origin: peer.ledger_origin, size});
    } else if (held === undefined) {
      log.sizes[size] = [root, note];
      const sizes = Object.keys(log.sizes).map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const s of sizes.slice(0, Math.max(0, sizes.length - MAX_RECEIPT_CHECKPOINTS))) {
        delete log.sizes[String(s)];
      }
    }
    book[peer.ledger_origin] = log;
    writeFileSync(path + '.tmp', JSON.stringify(book), {mode: 0o600});
    renameSync(path + '.tmp', path);
    if (error) {
      throw error;
    }
  }

  /** A fresh request nonce (16 random bytes, base64url). */
  static nonce(): string {
    return randomBytes(16).toString('base64url');
  }
}
