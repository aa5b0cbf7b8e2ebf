/**
 * RFC 9162 Merkle tree hashing (SHA-256): leaf hash, interior hash, tree head of a
 * list of leaves (§2.1.1), and inclusion-proof verification (§2.1.3.2).
 */
import {createHash} from 'node:crypto';

export const HASH_SIZE = 32;

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
  }
  return new Uint8Array(h.digest());
}

/** MTH of one leaf: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(0x00), data);
}

/** Interior node: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(Uint8Array.of(0x01), left, right);
}

/** MTH(D[n]) over leaf hashes (RFC 9162 §2.1.1); the empty tree is SHA-256(""). */
export function rootFromLeafHashes(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) {
    return sha256();
  }
  if (leaves.length === 1) {
    return leaves[0];
  }
  let k = 1;
  while (k * 2 < leaves.length) {
    k *= 2;
  }
  return nodeHash(rootFromLeafHashes(leaves.slice(0, k)), rootFromLeafHashes(leaves.slice(k)));
}

/**
 * RFC 9162 §2.1.3.2: true when `proof` shows `leaf` at `index` in the tree of
 * `size` leaves whose root is `root`. Indices are bigint (a log holds up to 2^64 leaves).
 */
export function verifyInclusion(index: bigint, size: bigint, leaf: Uint8Array, proof: Uint8Array[], root: Uint8Array): boolean {
  if (index < 0n || index >= size || proof.length > 64) {
    return false;
  }
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== HASH_SIZE || sn === 0n) {
      return false;
    }
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && Buffer.compare(Buffer.from(r), Buffer.from(root)) === 0;
}

/**
 * RFC 9162 §2.1.4.2: true when `proof` shows the tree of `size1` leaves (root `root1`) is a
 * prefix of the tree of `size2` leaves (root `root2`). Equal sizes need an empty proof and
 * equal roots; from the empty tree to a larger one is an error (undefined in RFC 9162, and
 * useless: every tree extends it), as in transparency-dev/merkle.
 */
export function verifyConsistency(size1: bigint, size2: bigint, root1: Uint8Array, root2: Uint8Array, proof: Uint8Array[]): boolean {
  const eq = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
  if (size1 < 0n || size1 > size2 || proof.length > 128 || proof.some(p => p.length !== HASH_SIZE)) {
    return false;
  }
  if (size1 === size2) {
    return proof.length === 0 && eq(root1, root2);
  }
  if (size1 === 0n) {
    return false;
  }
  if (proof.length === 0) {
    return false;
  }
  const path = (size1 & (size1 - 1n)) === 0n ? [root1, ...proof] : [...proof];
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) {
      return false;
    }
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && eq(fr, root1) && eq(sr, root2);
}
