/**
 * The wire: `proto/accord/federation/v1/federation.proto` loaded at run time (protobufjs
 * for the signed payloads' bytes, @grpc/proto-loader + @grpc/grpc-js for the services),
 * and google.rpc.Status / ErrorInfo from the `grpc-status-details-bin` trailer.
 */
import {join} from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import {REPO} from './paths.js';

export const PROTO_FILE = join(REPO, 'proto', 'accord', 'federation', 'v1', 'federation.proto');
export const PACKAGE = 'accord.federation.v1';

/** protobufjs root of the wire (for encoding / decoding payload messages). */
export const root = new protobuf.Root().loadSync(PROTO_FILE, {keepCase: true});

/** The message type `accord.federation.v1.<name>`. */
export function messageType(name: string): protobuf.Type {
  return root.lookupType(`${PACKAGE}.${name}`);
}

/** Serialize a plain object as `name` (fields in snake_case, as in the .proto). */
export function encode(name: string, value: Record<string, unknown>): Uint8Array {
  const t = messageType(name);
  const unknown = Object.keys(value).filter(k => t.fields[k] === undefined);
  if (unknown.length > 0) {
    throw new Error(`${name}: no field ${unknown.join(', ')}`);
  }
  // fromObject takes the proto3 JSON forms too (int64 as decimal string, bytes as base64)
  const message = t.fromObject(value);
  const err = t.verify(message);
  if (err) {
    throw new Error(`${name}: ${err}`);
  }
  return t.encode(message).finish();
}

const definition = protoLoader.loadSync(PROTO_FILE, {keepCase: true, longs: String, enums: String, defaults: true, oneofs: true});
const loaded = grpc.loadPackageDefinition(definition) as any;
/** Service constructors (grpc-js). */
export const services = loaded.accord.federation.v1 as {
  FederationService: grpc.ServiceClientConstructor;
  AgentService: grpc.ServiceClientConstructor;
};

const rpc = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {fields: {code: {type: 'int32', id: 1}, message: {type: 'string', id: 2}, details: {rule: 'repeated', type: 'Any', id: 3}}},
            Any: {fields: {type_url: {type: 'string', id: 1}, value: {type: 'bytes', id: 2}}},
            ErrorInfo: {fields: {reason: {type: 'string', id: 1}, domain: {type: 'string', id: 2}, metadata: {keyType: 'string', type: 'string', id: 3} as protobuf.IField}},
          },
        },
      },
    },
  },
});
const StatusT = rpc.lookupType('google.rpc.Status');
const ErrorInfoT = rpc.lookupType('google.rpc.ErrorInfo');

/** A failed call: gRPC status name, Accord reason and ErrorInfo metadata. */
export class RpcError extends Error {
  constructor(readonly status: string, readonly reason: string, readonly metadata: Record<string, string>, message: string) {
    super(message);
  }
}

/** Turn a grpc-js ServiceError into an RpcError (reason from the ErrorInfo detail, "" without one). */
export function fromServiceError(err: grpc.ServiceError): RpcError {
  const status = grpc.status[err.code] ?? String(err.code);
  let reason = '';
  let metadata: Record<string, string> = {};
  const bin = err.metadata?.get('grpc-status-details-bin')?.[0];
  if (bin instanceof Buffer) {
    const st = StatusT.toObject(StatusT.decode(bin), {defaults: true}) as any;
    for (const d of st.details ?? []) {
      if (String(d.type_url).endsWith('/google.rpc.ErrorInfo')) {
        const info = ErrorInfoT.toObject(ErrorInfoT.decode(d.value), {defaults: true}) as any;
        reason = info.reason;
        metadata = info.metadata ?? {};
      }
    }
  }
  return new RpcError(status, reason, metadata, err.details || err.message);
}

/** Encode google.rpc.Status with one ErrorInfo (for this node's own server's errors). */
export function statusDetails(code: number, message: string, reason: string, metadata: Record<string, string> = {}): Buffer {
  const info = ErrorInfoT.encode(ErrorInfoT.fromObject({reason, domain: PACKAGE, metadata})).finish();
  return Buffer.from(StatusT.encode(StatusT.fromObject({code, message, details: [{type_url: 'type.googleapis.com/google.rpc.ErrorInfo', value: info}]})).finish());
}

/** Promise-returning unary call with a deadline. */
export function unary<T>(client: grpc.Client, method: string, request: unknown, timeoutMs = 15000): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutMs);
    (client as any)[method](request, new grpc.Metadata(), {deadline}, (err: grpc.ServiceError | null, res: T) => {
      if (err) {
        reject(fromServiceError(err));
      } else {
        resolve(res);
      }
    });
  });
}
