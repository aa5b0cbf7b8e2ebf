// Accord console: verify a ledger entry's inclusion proof in the browser (no server trust needed
// beyond the log's verifier key shown on the page).
//   leaf hash   = SHA-256(0x00 || entry bytes)                        RFC 9162 §2.1.1
//   audit path  -> root, checked against the checkpoint's root hash    RFC 9162 §2.1.3.2
//   checkpoint  = C2SP tlog-checkpoint body in a C2SP signed note, Ed25519 signature (key type 0x01)
//                 checked against the vkey <name>+<key ID hex>+<base64(0x01 || 32-byte key)>
"use strict";
(function () {
  const enc = new TextEncoder();
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  };
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (u) => new Uint8Array(await crypto.subtle.digest("SHA-256", u));
  const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

  class Failed extends Error {}

  function parseVkey(vkey) {
    // the key's base64 may itself hold "+": split at the first two only
    const a = vkey.indexOf("+"), b = a < 0 ? -1 : vkey.indexOf("+", a + 1);
    if (a <= 0 || b < 0) throw new Failed("verifier key is not <name>+<key ID>+<key>");
    const parts = [vkey.slice(0, a), vkey.slice(a + 1, b), vkey.slice(b + 1)];
    const raw = b64(parts[2]);
    if (raw.length !== 33 || raw[0] !== 0x01) throw new Failed("verifier key is not an Ed25519 (type 0x01) key");
    return { name: parts[0], keyId: parts[1], raw, pub: raw.slice(1) };
  }

  async function verifyNote(note, vk) {
    const split = note.indexOf("\n\n");
    if (split < 0) throw new Failed("checkpoint note has no signature block");
    const body = note.slice(0, split + 1);
    const expectedId = (await sha256(concat(enc.encode(vk.name), Uint8Array.of(0x0a), vk.raw))).slice(0, 4);
    if (hex(expectedId) !== vk.keyId.toLowerCase()) throw new Failed("verifier key ID does not match its key");
    const key = await crypto.subtle.importKey("raw", vk.pub, { name: "Ed25519" }, false, ["verify"]);
    for (const line of note.slice(split + 2).split("\n")) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m || m[1] !== vk.name) continue;
      const sig = b64(m[2]);
      if (sig.length !== 68 || !equal(sig.slice(0, 4), expectedId)) continue;
      if (await crypto.subtle.verify({ name: "Ed25519" }, key, sig.slice(4), enc.encode(body))) return body;
      throw new Failed("the checkpoint's Ed25519 signature does not verify");
    }
    throw new Failed("no signature by the log's key on the checkpoint");
  }

  function parseCheckpoint(body) {
    const lines = body.split("\n");
    if (lines.length < 4 || !/^[1-9][0-9]*$|^0$/.test(lines[1])) throw new Failed("malformed checkpoint body");
    const root = b64(lines[2]);
    if (root.length !== 32) throw new Failed("checkpoint root is not 32 bytes");
    return { origin: lines[0], size: Number(lines[1]), root };
  }

  // RFC 9162 §2.1.3.2: verify an inclusion proof (numbers as Number: indices < 2^53)
  async function rootFromPath(index, size, leaf, path) {
    if (index >= size) throw new Failed("leaf index not below the tree size");
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) throw new Failed("audit path longer than the tree allows");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Failed("audit path shorter than the tree needs");
    return r;
  }

  async function run(section) {
    const steps = document.getElementById("verify-steps");
    const verdict = document.getElementById("verdict");
    const detail = document.getElementById("verify-detail");
    const step = (ok, text) => {
      const li = document.createElement("li");
      li.className = ok ? "ok" : "bad";
      li.textContent = (ok ? "\u2713 " : "\u2717 ") + text;
      steps.appendChild(li);
    };
    const finish = (ok, text) => {
      verdict.className = "verdict " + (ok ? "ok" : "bad");
      verdict.dataset.verdict = ok ? "verified" : "failed";
      verdict.textContent = text;
    };
    try {
      if (!window.crypto || !crypto.subtle) throw new Failed("this browser offers no WebCrypto here (needs a secure context)");
      const resp = await fetch(section.dataset.proof, { credentials: "same-origin" });
      if (!resp.ok) throw new Failed("proof not available (HTTP " + resp.status + ")");
      const p = await resp.json();
      if (p.pending) { verdict.className = "verdict pending"; verdict.dataset.verdict = "pending"; verdict.textContent = "Not yet verifiable: " + p.pending; return; }
      detail.textContent = JSON.stringify(p, null, 2);
      document.getElementById("vkey").textContent = p.vkey;
      const leaf = await sha256(concat(Uint8Array.of(0), b64(p.entry_b64)));
      const shown = (document.getElementById("e-leaf") || {}).textContent || "";
      const leafOk = equal(leaf, b64(p.leaf_hash_b64)) && (!shown || shown.trim() === hex(leaf));
      step(leafOk, "leaf hash SHA-256(0x00 || entry) = " + hex(leaf).slice(0, 16) + "\u2026");
      if (!leafOk) throw new Failed("the entry's bytes do not hash to its leaf hash");
      const vk = parseVkey(p.vkey);
      const body = await verifyNote(p.checkpoint, vk);
      step(true, "checkpoint signed by " + vk.name + " (Ed25519, key ID " + vk.keyId + ")");
      const cp = parseCheckpoint(body);
      if (cp.size !== p.tree_size) throw new Failed("proof is for size " + p.tree_size + ", checkpoint says " + cp.size);
      const root = await rootFromPath(p.leaf_index, p.tree_size, leaf, p.hashes_b64.map(b64));
      const rootOk = equal(root, cp.root);
      step(rootOk, "audit path of " + p.hashes_b64.length + " hashes leads to root " + hex(root).slice(0, 16) + "\u2026 of size " + cp.size);
      if (!rootOk) throw new Failed("the audit path does not lead to the checkpoint's root");
      finish(true, "Verified: entry " + p.leaf_index + " is in " + cp.origin + " at size " + cp.size + ", under a valid signed checkpoint.");
    } catch (e) {
      if (!(e instanceof Failed)) console.error(e);
      step(false, e.message);
      finish(false, "FAILED: " + e.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("verify");
    if (section) run(section);
  });
})();
