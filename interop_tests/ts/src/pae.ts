/**
 * DSSE v1 Pre-Authentication Encoding and Accord's signed payloads (WIRE.md
 * "PAE"; secure-systems-lab/dsse protocol.md):
 *
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * LEN is the ASCII decimal byte length, no leading zeros; `type` is UTF-8.
 * The signature is Ed25519 over PAE(payload_type, payload); receivers verify the
 * bytes as sent, then parse them.
 */
import {Ed25519Key, verifyEd25519} from './ed25519.js';

/** A signed payload as it travels (proto `SignedPayload`). */
export interface SignedPayload {
  payloadType: string;
  payload: Uint8Array;
  signature: Uint8Array;
}

/** The PAE bytes of (type, body). */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'ascii'),
    type,
    Buffer.from(` ${payload.length} `, 'ascii'),
    Buffer.from(payload),
  ]);
}

/** Sign `payload` as `payloadType` with `key`. */
export function signPayload(key: Ed25519Key, payloadType: string, payload: Uint8Array): SignedPayload {
  return {payloadType, payload, signature: key.sign(pae(payloadType, payload))};
}

/** True when `signed.signature` is `publicKey`'s Ed25519 signature over PAE(type, payload). */
export function verifyPayload(publicKey: Uint8Array, signed: SignedPayload): boolean {
  return verifyEd25519(publicKey, signed.signature, pae(signed.payloadType, signed.payload));
}

/** The protocol versions this implementation speaks. */
export const PROTOCOL_VERSIONS = ['accord.federation.v1'];

const TYPE_RE = /^accord\.federation\.(v[1-9][0-9]{0,5})\.([A-Z][A-Za-z0-9]{0,63})$/;

/** Error with a gRPC status name and an Accord ErrorInfo reason (WIRE.md receiver order). */
export class ProtocolError extends Error {
  constructor(readonly status: string, readonly reason: string, message: string) {
    super(message);
  }
}

/**
 * Check a payload type against the name expected for a field (WIRE.md step 2).
 * Throws ProtocolError FAILED_PRECONDITION/UNSUPPORTED_VERSION for a version not spoken,
 * INVALID_ARGUMENT/WRONG_PAYLOAD_TYPE for another message name or a type of another form.
 */
export function checkPayloadType(payloadType: string, expectedName: string): void {
  const m = TYPE_RE.exec(payloadType);
  if (m === null) {
    throw new ProtocolError('INVALID_ARGUMENT', 'WRONG_PAYLOAD_TYPE', `payload type ${JSON.stringify(payloadType.slice(0, 100))} is not accord.federation.vN.Name`);
  }
  if (!PROTOCOL_VERSIONS.includes(`accord.federation.${m[1]}`)) {
    throw new ProtocolError('FAILED_PRECONDITION', 'UNSUPPORTED_VERSION', `protocol version ${m[1]} is not spoken`);
  }
  if (m[2] !== expectedName) {
    throw new ProtocolError('INVALID_ARGUMENT', 'WRONG_PAYLOAD_TYPE', `payload type ${payloadType} where ${expectedName} was expected`);
  }
}
