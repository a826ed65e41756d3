import { describe, expect, it } from 'vitest';
import type { CkksVector } from '../ckks/index.ts';
import { CkksContext } from '../ckks/index.ts';
import { batchCost, batchDepth, recordBatch, runBatch, runBatchInstr } from './batch.ts';
import { runPlain } from './execute.ts';
import { GraphBuilder } from './builder.ts';
import { parseOnnx } from './onnx.ts';

// Conv → x² → AveragePool 2×2 → Conv: the pooled squares are summed once by additions, so the
// second conv combines one term per pooled value (channels·k·k) instead of four, at no level.
function pooled(): ReturnType<typeof parseOnnx> {
  const b = new GraphBuilder(3);
  const x = b.input('x', [null, 1, 6, 6]);
  const w = (dims: number[]): string => b.init(`w${dims.join('x')}`, { dims, data: Float64Array.from({ length: dims.reduce((a, c) => a * c, 1) }, (_, i) => Math.sin(i + 1)) });
  const c1 = b.node('Conv', [x, w([2, 1, 3, 3])], { pads: [1, 1, 1, 1] });
  const sq = b.node('Mul', [c1, c1]);
  const pool = b.node('AveragePool', [sq], { kernel_shape: [2, 2], strides: [2, 2] });
  b.output(b.node('Conv', [pool, w([3, 2, 2, 2])]));
  return parseOnnx(b.toBytes());
}

describe('batch plan: equal-coefficient forms', () => {
  it('sums each pooled window once and feeds the next layer one term per pooled value', () => {
    const graph = pooled();
    const program = recordBatch(graph, 10);
    const sums = program.instrs.filter((i) => i.op === 'sum');
    // 2 channels × 3×3 pooled windows of 4 squares each.
    expect(sums).toHaveLength(18);
    for (const s of sums) expect(s.ins).toHaveLength(4);
    const last = program.instrs.filter((i) => i.op === 'lc').slice(-12);
    // Conv 3@2×2 over 2 channels: 8 terms per output (not 32), over sums only.
    const sumIds = new Set(sums.map((s) => s.out));
    for (const l of last) {
      expect(l.op === 'lc' && l.ins.length).toBe(8);
      if (l.op === 'lc') for (const id of l.ins) expect(sumIds.has(id)).toBe(true);
    }
    // The squares feed only the sums: left unfinished, each sum relinearizes and rescales once.
    expect(program.instrs.filter((i) => i.op === 'mul' && i.finish === false)).toHaveLength(72);
    expect(sums.every((i) => i.op === 'sum' && i.finish === true)).toBe(true);
    // Additions use no level: conv, x², conv.
    expect(batchDepth(graph)).toBe(3);
    // 72 first-conv outputs (≤ 9 terms each, fewer at the padded border) + 12 × 8.
    const cost = batchCost(graph);
    expect(cost.products).toBe(72);
    expect(cost.additions).toBe(18 * 3);
    expect(cost.scalarProducts).toBe(program.instrs.reduce((s, i) => s + (i.op === 'lc' ? i.ins.length : 0), 0));
    expect(cost.scalarProducts - 12 * 8).toBe(2 * (4 * 4 + 4 * 6 * 4 + 16 * 9));
  });

  it('the recorded program (unfinished squares, sums finished once) decrypts to the plaintext result, as runBatch does', async () => {
    await expectBatchEqualsPlain(pooled(), [40, 30, 30, 30, 40]);
  });
});

// Conv → degree-4 polynomial (the node pattern of calibrated activations: t affine in the conv,
// t², t³ = t·t², t⁴ = t²·t², Σ c_k·t^k + c0) → AveragePool 2×2 → Conv: each pooled value is
// c_k/4 on the four t^k of its window for every power k, so it enters the second conv as four
// sums (one per power), not sixteen terms.
function pooledPolynomial(): ReturnType<typeof parseOnnx> {
  const b = new GraphBuilder(3);
  const x = b.input('x', [null, 1, 6, 6]);
  const w = (dims: number[]): string => b.init(`w${dims.join('x')}`, { dims, data: Float64Array.from({ length: dims.reduce((a, c) => a * c, 1) }, (_, i) => 0.5 * Math.sin(i + 1)) });
  const k = (name: string, v: number): string => b.init(name, { dims: [], data: Float64Array.of(v) });
  const c1 = b.node('Conv', [x, w([2, 1, 3, 3])], { pads: [1, 1, 1, 1] });
  const t = b.node('Sub', [b.node('Mul', [c1, k('a', 0.4)]), k('m', 0.1)]);
  const t2 = b.node('Mul', [t, t]);
  const t3 = b.node('Mul', [t, t2]);
  const t4 = b.node('Mul', [t2, t2]);
  const terms = [t, t2, t3, t4].map((p, i) => b.node('Mul', [p, k(`c${i + 1}`, [0.5, 0.3, -0.02, -0.04][i]!)]));
  const poly = b.node('Add', [terms.reduce((acc, term) => b.node('Add', [acc, term])), k('c0', 0.2)]);
  const pool = b.node('AveragePool', [poly], { kernel_shape: [2, 2], strides: [2, 2] });
  b.output(b.node('Conv', [pool, w([3, 2, 2, 2])]));
  return parseOnnx(b.toBytes());
}

describe('batch plan: pooled polynomial activations', () => {
  it('sums each pooled window once per power and feeds the next layer four terms per pooled value', () => {
    const graph = pooledPolynomial();
    const program = recordBatch(graph, 10);
    const sums = program.instrs.filter((i) => i.op === 'sum');
    // 2 channels × 3×3 pooled windows × 4 powers, each a sum of 4 ciphertexts.
    expect(sums).toHaveLength(72);
    for (const s of sums) expect(s.ins).toHaveLength(4);
    // Conv 3@2×2 over 2 channels: 8 pooled values × 4 powers = 32 terms per output (not 128), over
    // sums only (the sums of t and t² mod-switched down to the level of the t³ and t⁴ sums).
    const sumIds = new Set(sums.map((s) => s.out));
    const switched = new Map(program.instrs.flatMap((i) => (i.op === 'toLevel' ? [[i.out, i.a] as const] : [])));
    const last = program.instrs.filter((i) => i.op === 'lc').slice(-12);
    for (const l of last) {
      expect(l.op === 'lc' && l.ins.length).toBe(32);
      if (l.op === 'lc') for (const id of l.ins) expect(sumIds.has(switched.get(id) ?? id)).toBe(true);
    }
    // The sums of t and t² (18 windows × 2, one level above the t³ and t⁴ sums) are switched down
    // once each and shared by all 12 outputs (before: once per use, 12 × 8 × 2 = 192 copies).
    const switches = program.instrs.filter((i) => i.op === 'toLevel');
    expect(new Set(switches.map((i) => i.op === 'toLevel' && `${i.a}@${i.level}`)).size).toBe(switches.length);
    expect(switches).toHaveLength(36);
    // t³ and t⁴ feed only their sums (left unfinished, each of those 36 sums finishes once); t² also feeds t³ and t⁴.
    expect(program.instrs.filter((i) => i.op === 'mul' && i.finish === false)).toHaveLength(144);
    expect(sums.filter((i) => i.op === 'sum' && i.finish === true)).toHaveLength(36);
    // conv + t (one form), t², t³ / t⁴, conv: additions use no level.
    expect(batchDepth(graph)).toBe(4);
    const cost = batchCost(graph);
    expect(cost.products).toBe(72 * 3);
    expect(cost.additions).toBe(72 * 3);
    // 72 materialized t (≤ 9 terms each, fewer at the padded border) + 12 × 32.
    expect(cost.scalarProducts - 12 * 32).toBe(2 * (4 * 4 + 4 * 6 * 4 + 16 * 9));
  });

  it('decrypts to the plaintext result, recorded program and runBatch alike', async () => {
    await expectBatchEqualsPlain(pooledPolynomial(), [40, 30, 30, 30, 30, 40]);
  });
});

/**
 * Runs `graph` on 3 encrypted samples of a 1 × 6 × 6 input both ways — the recorded program
 * instruction by instruction and runBatch — and checks each against the plaintext executor.
 */
async function expectBatchEqualsPlain(graph: ReturnType<typeof parseOnnx>, coeffModulusBits: number[]): Promise<void> {
  const ctx = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits, scaleBits: 30 });
  const values = new Map<number, CkksVector>();
  try {
    const samples = 3;
    const x = Float64Array.from({ length: samples * 36 }, (_, i) => Math.sin(7 * i) * 0.8);
    const input = Array.from({ length: 36 }, (_, j) => ctx.encryptVector(Float64Array.from({ length: samples }, (_, s) => x[s * 36 + j]!)));
    input.forEach((v, i) => values.set(i, v));
    const program = recordBatch(graph, ctx.maxLevel);
    for (const ins of program.instrs) runBatchInstr(ctx, values, ins);
    const direct = runBatch(ctx, graph, input);
    const want = runPlain(graph, { dims: [samples, 1, 6, 6], data: x }).data;
    const per = program.outputs.length;
    program.outputs.forEach((id, k) => {
      const got = ctx.decryptVector(values.get(id)!, samples);
      const ref = ctx.decryptVector(direct[k]!, samples);
      for (let s = 0; s < samples; s++) {
        const w = want[s * per + k]!;
        expect(Math.abs(got[s]! - w)).toBeLessThan(1e-3 * Math.max(1, Math.abs(w)));
        expect(Math.abs(ref[s]! - w)).toBeLessThan(1e-3 * Math.max(1, Math.abs(w)));
      }
    });
    for (const v of direct) v.delete();
  } finally {
    for (const v of values.values()) v.delete();
    ctx.delete();
  }
}
