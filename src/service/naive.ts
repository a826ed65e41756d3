// A namespace import: zstd exists from Node.js 23.8; a named import would fail at link time on
// older Node.js before core/node-version.ts could explain why.
import * as nodeZlib from 'node:zlib';
import { openEnvelope } from '../core/envelope.ts';

/**
 * Internal, for tests and bench/robustness.ts only: the CKKS body read as it was before issue 13,
 * kept as the naive baseline the defences are measured against. It decompresses to whatever
 * length the body declares (up to 2³¹ − 1 bytes) on the calling thread and splits every section,
 * one array entry per 4 zero bytes. Never used when `unsafeNaive` is off.
 *
 * @example
 * ```ts
 * naiveReadSections(bomb); // allocates what the bomb declares
 * ```
 */
export function naiveReadSections(bytes: Uint8Array, kind: 'publicKey' | 'ciphertext'): number {
  let env;
  try {
    env = openEnvelope(bytes, { kind, scheme: 'ckks' }, 'body');
  } catch {
    return 0;
  }
  const body = env.body;
  if (body.length < 5) return 0;
  const declared = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
  let raw: Uint8Array;
  try {
    raw = nodeZlib.zstdDecompressSync(body.subarray(5), { maxOutputLength: Math.max(1, Math.min(declared, 2 ** 31 - 1)) });
  } catch {
    return 0;
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const sections: Uint8Array[] = [];
  for (let o = 0; o + 4 <= raw.length; ) {
    const n = view.getUint32(o);
    if (o + 4 + n > raw.length) break;
    sections.push(raw.subarray(o + 4, o + 4 + n));
    o += 4 + n;
  }
  return sections.length;
}
