#!/usr/bin/env node
/**
 * Command line of the TypeScript requester node (JSON on stdin, one JSON object on stdout;
 * exit 0 on success, 3 on a protocol refusal, 2 on any other failure):
 *
 *   serve <node_dir>                       run the status-list server; prints {"ready": true, "port"}
 *   status <node_dir> <agent> <revoke|suspend|clear>   set the agent's bits in status.json
 *   exchange <node_dir>                    {agent, peer, requests: [RequestSpec], wait_witnessed_ms?}
 *                                          -> {session, results: [ExchangeResult]}
 *   verify-log <node_dir>                  -> {size, root, checkpoint_verified}
 *   agent-exchange <wallet.json>           {peer, requests: [RequestSpec]} through the agent's own
 *                                          node's AgentService -> {session, results}
 */
import {readFileSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {Agent} from './agent.js';
import {AgentClient} from './agent_client.js';
import {NodeIdentity} from './identity.js';
import {leafHash, rootFromLeafHashes} from './merkle.js';
import {openCheckpoint} from './note.js';
import {ProtocolError} from './pae.js';
import {RpcError} from './proto.js';
import {ReceiptError, RequesterNode} from './requester.js';
import {serve} from './server.js';

function out(value: unknown): void {
  // bytes as base64 (JSON.stringify has already turned a Buffer into {type: 'Buffer', data})
  const replacer = (_k: string, v: any) => (typeof v === 'bigint' ? String(v)
    : v !== null && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('base64') : v);
  process.stdout.write(JSON.stringify(value, replacer) + '\n');
}

async function main(): Promise<void> {
  const [command, dir, ...rest] = process.argv.slice(2);
  if (!dir) {
    throw new Error('usage: cli.js <serve|status|exchange|verify-log> <node_dir> ...');
  }
  if (command === 'agent-exchange') {
    const req = JSON.parse(readFileSync(0, 'utf8'));
    const client = new AgentClient(Agent.fromWallet(dir));
    try {
      const session = await client.openSession(req.peer);
      const results = [];
      for (const spec of req.requests) {
        try {
          results.push(await client.send(session, spec));
        } catch (e) {
          if (!(e instanceof RpcError)) {
            throw e;
          }
          results.push({error: {status: e.status, reason: e.reason, message: e.message, metadata: e.metadata}});
        }
      }
      out({session, results});
    } finally {
      client.close();
    }
    return;
  }
  const identity = new NodeIdentity(dir);
  if (command === 'serve') {
    const {server, port} = await serve(identity);
    out({ready: true, port});
    const stop = () => server.tryShutdown(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  if (command === 'status') {
    const [name, action] = rest;
    const cred: any = identity.wallet(name).credential;
    const entries = Array.isArray(cred.credentialStatus) ? cred.credentialStatus : [cred.credentialStatus];
    const status = identity.statusBits();
    for (const e of entries.filter(Boolean)) {
      const idx = Number(e.statusListIndex);
      const list = e.statusPurpose === 'revocation' ? status.revoked : status.suspended;
      const want = (action === 'revoke' && e.statusPurpose === 'revocation') || (action === 'suspend' && e.statusPurpose === 'suspension');
      const at = list.indexOf(idx);
      if (want && at < 0) list.push(idx);
      if (action === 'clear' && at >= 0) list.splice(at, 1);
    }
    writeFileSync(join(dir, 'status.json'), JSON.stringify(status), {mode: 0o600});
    out(status);
    return;
  }
  if (command === 'exchange') {
    const req = JSON.parse(readFileSync(0, 'utf8'));
    const node = new RequesterNode(identity, req.witness_quorum ?? 1);
    try {
      const agent = Agent.fromWallet(join(dir, 'agents', `${req.agent}.json`));
      const session = await node.openSession(agent, req.peer);
      const results = [];
      for (const spec of req.requests) {
        try {
          results.push(await node.exchange(session, spec, {waitWitnessedMs: req.wait_witnessed_ms ?? 0}));
        } catch (e) {
          if (e instanceof RpcError || e instanceof ProtocolError || e instanceof ReceiptError) {
            results.push({error: {status: e.status, reason: e.reason, message: e.message, metadata: (e as RpcError).metadata ?? {}}});
          } else {
            throw e;
          }
        }
      }
      out({session: {session_id: session.session_id, expires_at: session.expires_at, effective_trust: session.effective_trust}, results});
    } finally {
      node.close();
    }
    return;
  }
  if (command === 'verify-log') {
    const node = new RequesterNode(identity);
    const entries = node.log.entries();
    const root = rootFromLeafHashes(entries.map(leafHash));
    const {checkpoint} = openCheckpoint(readFileSync(join(dir, 'ledger', 'checkpoint'), 'utf8'), node.log.vkey);
    out({
      size: entries.length, root: Buffer.from(root).toString('base64'), vkey: node.log.vkey,
      checkpoint_verified: checkpoint.size === BigInt(entries.length) && Buffer.compare(Buffer.from(checkpoint.root), Buffer.from(root)) === 0,
      entries: entries.map(e => JSON.parse(e.toString('utf8'))),
    });
    return;
  }
  throw new Error(`unknown command ${command}`);
}

main().catch(e => {
  if (e instanceof RpcError || e instanceof ProtocolError || e instanceof ReceiptError) {
    out({error: {status: e.status, reason: e.reason, message: e.message, metadata: (e as RpcError).metadata ?? {}}});
    process.exitCode = 3;
  } else {
    out({error: {status: 'CLIENT', reason: '', message: String(e?.stack ?? e)}});
    process.exitCode = 2;
  }
});
