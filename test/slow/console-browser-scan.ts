/**
 * Scans request bodies for plaintext training data and secret-key material (the browser test's
 * privacy check). A finding is a run of bytes, not a single value: single float32 values would
 * match random ciphertext bytes by chance (about 3·10⁻⁶ per offset for the values here), runs of
 * three adjacent values (12 or 24 bytes) and 32-byte key windows do not. Data and key patterns
 * share one scanner, so each body is read once (≈ 10 s per 100 MiB on a loaded 2-core machine).
 */

/**
 * Byte patterns indexed by an anchor: 4 bytes of the pattern that are not low-entropy (at least 3
 * distinct values, not all zero), so that the zero runs of SEAL's 64-bit words (residues below
 * 2^33 leave their top bytes zero) do not hit every candidate. `scan` reads each offset of a body
 * once. A pattern without such 4 bytes (mostly zeros) carries no data worth scanning for and is
 * skipped (counted in `skipped`).
 */
export class PatternScanner {
  readonly #byAnchor = new Map<number, { bytes: Uint8Array; at: number; label: string }[]>();
  /** One byte per top-24-bit value of an anchor: most offsets are turned away without a Map lookup. */
  readonly #filter = new Uint8Array(1 << 24);
  #count = 0;
  skipped = 0;

  get size(): number {
    return this.#count;
  }

  add(bytes: Uint8Array, label: string): void {
    if (bytes.length < 8) throw new Error('patterns shorter than 8 bytes match ciphertext by chance');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = -1;
    for (let k = 0; k + 4 <= bytes.length && at < 0; k++) if (new Set(bytes.subarray(k, k + 4)).size >= 3) at = k;
    if (at < 0) {
      this.skipped++;
      return;
    }
    const key = view.getUint32(at, true);
    this.#filter[key >>> 8] = 1;
    const list = this.#byAnchor.get(key) ?? [];
    list.push({ bytes, at, label });
    this.#byAnchor.set(key, list);
    this.#count++;
  }

  /** Labels of the patterns found in `body` (at most `max`). */
  scan(body: Uint8Array, max = 5): string[] {
    const found: string[] = [];
    const filter = this.#filter;
    const n = body.length;
    // idx = bytes o+1..o+3 (the anchor's top 24 bits, little-endian), rolled along the body.
    let idx = n >= 4 ? body[1]! | (body[2]! << 8) | (body[3]! << 16) : 0;
    for (let o = 0; o + 4 <= n; o++) {
      if (o > 0) idx = (idx >>> 8) | (body[o + 3]! << 16);
      if (filter[idx] === 0) continue;
      const key = (body[o]! | (idx << 8)) >>> 0;
      const list = this.#byAnchor.get(key);
      if (list === undefined) continue;
      for (const { bytes, at, label } of list) {
        const start = o - at;
        if (start < 0 || start + bytes.length > body.length) continue;
        let eq = true;
        for (let i = 0; i < bytes.length && eq; i++) eq = body[start + i] === bytes[i];
        if (eq) {
          found.push(`${label} at byte ${start}`);
          if (found.length >= max) return found;
        }
      }
    }
    return found;
  }
}

function encodings(values: readonly number[]): { name: string; bytes: Uint8Array }[] {
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (const [name, width, set] of [
    ['float64le', 8, (v: DataView, o: number, x: number) => v.setFloat64(o, x, true)],
    ['float64be', 8, (v: DataView, o: number, x: number) => v.setFloat64(o, x, false)],
    ['float32le', 4, (v: DataView, o: number, x: number) => v.setFloat32(o, x, true)],
    ['float32be', 4, (v: DataView, o: number, x: number) => v.setFloat32(o, x, false)],
  ] as const) {
    const b = new Uint8Array(values.length * width);
    const v = new DataView(b.buffer);
    values.forEach((x, i) => set(v, i * width, x));
    out.push({ name, bytes: b });
  }
  return out;
}

/**
 * The training data's plain encodings: every three adjacent feature values of a row (row-major
 * layout) and of a column (column-major), as float64 and float32, little- and big-endian; and the
 * decimal text of every feature cell (matched as whole number tokens with a decimal point).
 */
export function addDataPatterns(binary: PatternScanner, datasets: readonly { features: readonly ArrayLike<number>[]; cells: readonly string[] }[]): Set<string> {
  const text = new Set<string>();
  for (const [d, ds] of datasets.entries()) {
    const rows = ds.features.map((r) => Array.from(r));
    const F = rows[0]!.length;
    for (const [i, r] of rows.entries()) for (let j = 0; j + 3 <= F; j++) for (const e of encodings(r.slice(j, j + 3))) binary.add(e.bytes, `dataset ${d} row ${i} cols ${j}..${j + 2} (${e.name})`);
    for (let j = 0; j < F; j++) for (let i = 0; i + 3 <= rows.length; i++) for (const e of encodings([rows[i]![j]!, rows[i + 1]![j]!, rows[i + 2]![j]!])) binary.add(e.bytes, `dataset ${d} col ${j} rows ${i}..${i + 2} (${e.name})`);
    for (const c of ds.cells) if (/\.\d{3,}/.test(c)) text.add(c.trim());
    for (const r of rows) for (const x of r) text.add(String(x));
  }
  return text;
}

/** Decimal tokens of `body` (read as Latin-1) that are cells of the training data. */
export function textLeaks(body: Uint8Array, cells: ReadonlySet<string>, max = 5): string[] {
  const s = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  const found: string[] = [];
  for (const m of s.matchAll(/-?\d+\.\d{3,}(?:e[-+]?\d+)?/g)) {
    if (cells.has(m[0])) {
      found.push(`CSV cell ${m[0]} at ${m.index}`);
      if (found.length >= max) break;
    }
  }
  return found;
}

/**
 * 32-byte windows at a 16-byte stride of each secret (any leaked run of ≥ 48 bytes contains one),
 * raw and as base64 text at each of the 3 byte phases (base64 of a larger buffer that contains the
 * secret lines up with one of them).
 */
export function addSecretPatterns(s: PatternScanner, secrets: readonly { name: string; bytes: Uint8Array }[]): void {
  for (const { name, bytes } of secrets) {
    for (let o = 0; o + 32 <= bytes.length; o += 16) s.add(bytes.subarray(o, o + 32), `${name} bytes ${o}..${o + 31}`);
    for (let phase = 0; phase < 3; phase++) {
      const b64 = Buffer.from(bytes.subarray(phase)).toString('base64');
      for (let o = 0; o + 48 <= b64.length; o += 24) s.add(Buffer.from(b64.slice(o, o + 48), 'latin1'), `${name} base64 (phase ${phase}) ${o}..${o + 47}`);
    }
  }
}
