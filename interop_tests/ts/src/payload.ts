/**
 * The receiver of a signed payload (WIRE.md "Receiver order"), as both implementations
 * run it on every SignedPayload field:
 *
 *   1. bound   payload <= the limit of the field's message -> INVALID_ARGUMENT / PAYLOAD_TOO_LARGE
 *   2. type    accord.federation.vN.Name: N not spoken -> FAILED_PRECONDITION / UNSUPPORTED_VERSION,
 *              another Name or form -> INVALID_ARGUMENT / WRONG_PAYLOAD_TYPE
 *   3. signature  Ed25519 over PAE with the key already trusted for the signer
 *              -> UNAUTHENTICATED / BAD_ORG_SIGNATURE | BAD_AGENT_SIGNATURE
 *   4. parse   the payload must be the named message -> INVALID_ARGUMENT / MALFORMED_PAYLOAD
 *              (including strings that are not UTF-8), a field the message does not define
 *              (at any depth) -> INVALID_ARGUMENT / UNKNOWN_FIELD
 */
import protobuf from 'protobufjs';
import {checkPayloadType, ProtocolError, SignedPayload, verifyPayload} from './pae.js';
import {messageType} from './proto.js';

/** Largest payload per message, bytes (checked before anything else). */
export const MAX_PAYLOAD_BYTES: Record<string, number> = {
  RequestBody: 64 * 1024,
  ExchangeEnvelope: 80 * 1024,
  SessionPossession: 2 * 1024,
};

const utf8 = new TextDecoder('utf-8', {fatal: true});

/** Walk the protobuf wire format of `bytes` as `type`; throws ProtocolError on unknown fields or bad encoding. */
function scan(type: protobuf.Type, bytes: Uint8Array, path: string): void {
  const r = protobuf.Reader.create(bytes);
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      const id = tag >>> 3;
      const wire = tag & 7;
      const field = type.fieldsById[id];
      if (field === undefined) {
        throw new ProtocolError('INVALID_ARGUMENT', 'UNKNOWN_FIELD', `${path} carries field number ${id}, unknown in this version`);
      }
      field.resolve();
      if (field.resolvedType instanceof protobuf.Type) {
        if (wire !== 2) {
          throw new Error('wire type');
        }
        scan(field.resolvedType, r.bytes(), `${path}.${field.name}`);
      } else if (field.type === 'string') {
        if (wire !== 2) {
          throw new Error('wire type');
        }
        utf8.decode(r.bytes());
      } else {
        r.skipType(wire);
      }
    }
  } catch (e) {
    if (e instanceof ProtocolError) {
      throw e;
    }
    throw new ProtocolError('INVALID_ARGUMENT', 'MALFORMED_PAYLOAD', `${path} is not a ${type.name}: ${String((e as Error).message ?? e)}`);
  }
}

/**
 * Open a signed payload expected to hold message `name`, signed by `trustedKey` (the
 * key this receiver already trusts for the signer). Returns the decoded message (plain
 * object, snake_case fields). Throws ProtocolError with the status and reason of the first
 * failed step.
 */
export function openPayload(signed: SignedPayload, name: string, trustedKey: Uint8Array, signer: 'org' | 'agent', field = name): any {
  const limit = MAX_PAYLOAD_BYTES[name];
  if (limit === undefined) {
    throw new Error(`${name} is not a signed payload message`);
  }
  if (signed.payload.length > limit) {
    throw new ProtocolError('INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', `${field}: payload of ${signed.payload.length} bytes exceeds ${limit}`);
  }
  if (Buffer.byteLength(signed.payloadType, 'utf8') > 128) {
    throw new ProtocolError('INVALID_ARGUMENT', 'WRONG_PAYLOAD_TYPE', `${field}: payload type longer than 128 bytes`);
  }
  checkPayloadType(signed.payloadType, name);
  if (!verifyPayload(trustedKey, signed)) {
    const reason = signer === 'org' ? 'BAD_ORG_SIGNATURE' : 'BAD_AGENT_SIGNATURE';
    throw new ProtocolError('UNAUTHENTICATED', reason, `${field}: signature does not verify`);
  }
  const type = messageType(name);
  scan(type, signed.payload, field);
  return type.toObject(type.decode(signed.payload), {longs: String, defaults: true, bytes: Buffer});
}
