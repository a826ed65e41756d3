// A leak finder for the privacy tests: does any worker update appear in what the server received,
// in any encoding a broken build might use? Encodings searched for every nonzero value x of every
// recorded update and of its FedAvg-weighted form w·x: float64 and float32, little- and big-endian;
// fixed point round(x·2^16) as int32 and int64, little- and big-endian; and the offset form
// round(x·2^16) + 2^31 a Paillier packing slot holds (uint32/uint64, both byte orders).
// Encodings with fewer than 3 informative bytes (not 0x00/0xff) are skipped: they occur in any
// protobuf framing by chance. An int64 of a small fixed-point value is still found through its
// int32 prefix (little-endian) or suffix (big-endian).

const informative = (b: Buffer): number => b.reduce((a, x) => a + (x !== 0 && x !== 0xff ? 1 : 0), 0);

function encodings(x: number): Buffer[] {
  const out: Buffer[] = [];
  const f64 = Buffer.alloc(8);
  f64.writeDoubleLE(x);
  out.push(Buffer.from(f64));
  f64.writeDoubleBE(x);
  out.push(Buffer.from(f64));
  const f32 = Buffer.alloc(4);
  f32.writeFloatLE(x);
  out.push(Buffer.from(f32));
  f32.writeFloatBE(x);
  out.push(Buffer.from(f32));
  const fixed = BigInt(Math.round(x * 2 ** 16));
  for (const v of [fixed, fixed + (1n << 31n)]) {
    const b8 = Buffer.alloc(8);
    b8.writeBigInt64LE(BigInt.asIntN(64, v));
    out.push(Buffer.from(b8));
    b8.writeBigInt64BE(BigInt.asIntN(64, v));
    out.push(Buffer.from(b8));
    const b4 = Buffer.alloc(4);
    b4.writeInt32LE(Number(BigInt.asIntN(32, v)));
    out.push(Buffer.from(b4));
    b4.writeInt32BE(Number(BigInt.asIntN(32, v)));
    out.push(Buffer.from(b4));
  }
  return out;
}

/** The first (value, encoding index) of `updates` (scaled by each of `weights` too) found in `received`, or null. */
export function findLeak(updates: readonly Float64Array[], weights: readonly number[], received: readonly Uint8Array[]): { value: number; encoding: number } | null {
  const all = Buffer.concat(received.map((r) => Buffer.from(r)));
  for (const u of updates) {
    for (const x of u) {
      if (x === 0 || Math.round(x * 2 ** 16) === 0) continue;
      for (const w of [1, ...weights]) {
        const encs = encodings(x * w);
        for (let k = 0; k < encs.length; k++) if (informative(encs[k]!) >= 3 && all.includes(encs[k]!)) return { value: x * w, encoding: k };
      }
    }
  }
  return null;
}
