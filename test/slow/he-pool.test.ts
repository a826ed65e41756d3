import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, serializeCiphertexts, serializePublicContext, serializeSecretKey } from '../../src/ckks/index.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import type { BatchProgram } from '../../src/inference/batch.ts';
import { instrOperands, recordBatch } from '../../src/inference/batch.ts';
import { GraphBuilder } from '../../src/inference/builder.ts';
import { runPlain } from '../../src/inference/execute.ts';
import { decryptOutput, encryptBatch, encryptSingle, inferBytes } from '../../src/inference/he.ts';
import type { Graph, Tensor } from '../../src/inference/onnx.ts';
import { parseOnnx } from '../../src/inference/onnx.ts';
import type { PoolSchedule } from '../../src/inference/pool.ts';
import { EncryptionPool, InferencePool, schedulePool } from '../../src/inference/pool.ts';
import { compileSingle } from '../../src/inference/single.ts';
import { centredTensor, ckksErrorUnit, errorDeviation, NOISE_TAIL, seededRand } from '../he-fixtures.ts';

// The batch plan split over worker threads must compute what the calling thread computes: same
// program, so both decrypt to the plaintext result within CKKS noise, over one chunk and over two
// (more samples than slots). The tolerance is per output: 10 standard deviations of the CKKS error
// propagated through the model from one operation's error at these parameters (he-fixtures.ts
// errorDeviation × ckksErrorUnit), so it scales with the model's magnitudes (two x² layers square
// them) where a fixed absolute tolerance failed (0.0058 against 0.005).
const PARAMS = { polyModulusDegree: 8192, coeffModulusBits: [39, 28, 28, 28, 28, 28, 39], scaleBits: 28 };
const UNIT = NOISE_TAIL * ckksErrorUnit(PARAMS.scaleBits, PARAMS.polyModulusDegree);
const rand0 = seededRand(99);
const rand = (): number => rand0() - 0.5;
const tensor = (dims: number[]): Tensor => centredTensor(rand0, dims);

// Conv → x² → Flatten → Gemm → x² → Gemm: the shape of the bundled MNIST model, small.
function model(): Graph {
  const b = new GraphBuilder(13);
  const x = b.input('x', [null, 1, 6, 6]);
  const c = b.node('Conv', [x, b.init('w', tensor([3, 1, 3, 3])), b.init('b', tensor([3]))], { strides: [2, 2] });
  const s = b.node('Mul', [c, c]);
  const f = b.node('Flatten', [s], { axis: 1 });
  const h = b.node('Gemm', [f, b.init('w1', tensor([27, 5])), b.init('b1', tensor([5]))]);
  const h2 = b.node('Mul', [h, h]);
  b.output(b.node('Gemm', [h2, b.init('w2', tensor([5, 3])), b.init('b2', tensor([3]))]));
  return parseOnnx(b.toBytes());
}

/**
 * Replays a schedule as the threads run it, round-robin, one instruction at a time: a thread
 * blocked on a value another thread has not sent yet waits (if all wait, the schedule deadlocks
 * and this fails). Every operand is present when used (an input it loads, a value it made and
 * has not freed, or one sent to it), every instruction runs exactly once, every output reaches
 * the caller, and nothing stays behind. Returns the peak values held by one thread.
 */
function replay(program: BatchProgram, s: PoolSchedule): number {
  const held: Set<number>[] = Array.from({ length: s.threads }, () => new Set());
  const inbox: Set<number>[] = Array.from({ length: s.threads }, () => new Set());
  const toCaller = new Set<number>();
  const ran = new Set<number>();
  const pc = new Array<number>(s.threads).fill(0);
  let peak = 0;
  for (;;) {
    let moved = false;
    s.plans.forEach((plan, t) => {
      const i = pc[t]!;
      const ins = plan.instrs[i];
      if (ins === undefined) return;
      const h = held[t]!;
      const ops = instrOperands(ins);
      if (ops.some((id) => !h.has(id) && !(id < program.inputs && plan.inputs.includes(id)) && !inbox[t]!.has(id))) return;
      for (const id of ops) {
        if (id >= program.inputs && !h.has(id)) expect(plan.receives.includes(id), `value ${id} received by thread ${t} unannounced`).toBe(true);
        h.add(id);
        inbox[t]!.delete(id);
      }
      expect(ran.has(ins.out)).toBe(false);
      ran.add(ins.out);
      h.add(ins.out);
      peak = Math.max(peak, h.size);
      const to = plan.send.find(([id]) => id === ins.out)?.[1] ?? [];
      for (const r of to) (r < 0 ? toCaller : inbox[r]!).add(ins.out);
      for (const id of plan.frees[i]!) h.delete(id);
      pc[t] = i + 1;
      moved = true;
    });
    if (!moved) break;
  }
  s.plans.forEach((plan, t) => expect(pc[t], `thread ${t} deadlocked`).toBe(plan.instrs.length));
  expect(ran.size).toBe(program.instrs.length);
  for (const id of program.outputs) expect(id < program.inputs || toCaller.has(id)).toBe(true);
  // Nothing stays behind on any thread.
  for (const h of held) expect([...h]).toEqual([]);
  return peak;
}

describe('schedulePool', () => {
  it('splits the bundled MNIST program over 1–4 threads consistently and balanced', async () => {
    const mnist = recordBatch(parseOnnx(await readFile(new URL('../../examples/he/mnist_square.onnx', import.meta.url))), 5);
    for (const program of [mnist, recordBatch(model(), 4)]) {
      for (const threads of [1, 2, 3, 4]) {
        const s = schedulePool(program, threads);
        replay(program, s);
        if (threads === 1) expect(s.moves).toBe(0);
        // List scheduling: with two threads the busier one carries little more than half.
        if (program === mnist && threads === 2) expect(s.spanCost).toBeLessThan(s.totalCost * 0.55);
      }
    }
    expect(() => schedulePool(mnist, 0)).toThrow(expect.objectContaining({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'threads' }));
  });

  it('sweeps a LeNet-5 image: a thread holds a band of values, not whole layers', async () => {
    // lenet5_square's program (784 inputs, 4,704 conv1 outputs, 1,176 pooled squares, 1,600
    // conv2 outputs) on 2 threads. Measured per thread, each walking its own instructions: 682
    // and 682 values at most with the sweep, 1,284 and 1,283 with the depth-first order from the
    // outputs and the per-wave assignment it replaced (which this bound fails).
    const program = recordBatch(parseOnnx(await readFile(new URL('../../examples/he/lenet5_square.onnx', import.meta.url))), 9);
    const s = schedulePool(program, 2);
    replay(program, s);
    s.plans.forEach((plan) => {
      const held = new Set<number>();
      let peak = 0;
      plan.instrs.forEach((ins, i) => {
        for (const id of [...instrOperands(ins), ins.out]) held.add(id);
        peak = Math.max(peak, held.size);
        for (const id of plan.frees[i]!) held.delete(id);
      });
      expect(peak).toBeLessThan(900);
    });
  });
});

describe('InferencePool', () => {
  let client: CkksContext;
  let pool: InferencePool;
  let publicKey: Uint8Array;
  const graph = model();
  beforeAll(async () => {
    client = await CkksContext.create(PARAMS);
    publicKey = serializePublicContext(client);
    pool = await InferencePool.create(publicKey, { threads: 2 });
  });
  afterAll(async () => {
    await pool?.close();
    client?.delete();
  });
  const samples = (n: number): Float64Array[] => Array.from({ length: n }, () => Float64Array.from({ length: 36 }, () => rand() * 2));
  const plain = (xs: Float64Array[]): Tensor & { tol: Float64Array } => {
    const data = new Float64Array(xs.length * 36);
    xs.forEach((x, i) => data.set(x, i * 36));
    const input = { dims: [xs.length, 1, 6, 6], data };
    return { ...runPlain(graph, input), tol: errorDeviation(graph, input).map((sd) => sd * UNIT) };
  };

  it('decrypts to what the calling thread computes, over one chunk and over two', async () => {
    for (const n of [5, client.slotCount + 3]) {
      const xs = samples(n);
      const enc = encryptBatch(client, xs, [1, 6, 6]);
      const progress: string[] = [];
      const fromPool = decryptOutput(client, await pool.inferBytes(graph, enc, { onProgress: (_d, _t, what) => progress.push(what) }));
      const ref = plain(xs);
      expect(fromPool.dims).toEqual([n, 3]);
      fromPool.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(ref.tol[i]!));
      expect(progress.at(-1)).toMatch(n > client.slotCount ? /^chunk 2\/2: 100 % of \d+ instructions$/ : /^100 % of \d+ instructions$/);
      if (n === 5) {
        const here = decryptOutput(client, inferBytes(client, graph, enc));
        // Two independent noisy results: each within its bound of the plaintext value.
        here.data.forEach((v, i) => expect(Math.abs(v - fromPool.data[i]!)).toBeLessThan(2 * ref.tol[i]!));
      }
    }
  });

  it('spills to stay within a small heap budget and computes the same ciphertexts; splits a wide combination exactly', async () => {
    // Conv 1→1 3×3 pad 1 on 24×24 → [c, c²] → Gemm 1,152→3: the Gemm reads more ciphertexts than
    // one combination takes (LC_CHUNK), so it runs as partials summed at the first partial's
    // scale; c (lowered) and c² differ in scale, and the chunks mix them.
    const b = new GraphBuilder(13);
    const x = b.input('x', [null, 1, 24, 24]);
    const c = b.node('Conv', [x, b.init('w', tensor([1, 1, 3, 3])), b.init('b', tensor([1]))], { pads: [1, 1, 1, 1] });
    const f = b.node('Flatten', [b.node('Concat', [c, b.node('Mul', [c, c])], { axis: 1 })], { axis: 1 });
    b.output(b.node('Gemm', [f, b.init('w1', tensor([1152, 3])), b.init('b1', tensor([3]))]));
    const wide = parseOnnx(b.toBytes());
    const program = recordBatch(wide, 4);
    const partials = program.instrs.filter((i) => i.op === 'lc' && i.ref !== undefined);
    expect(partials.length).toBe(3 * 2); // 3 chunks of 384 per output: two carry the first's scale
    const xs = Array.from({ length: 4 }, () => Float64Array.from({ length: 576 }, () => rand()));
    const enc = encryptBatch(client, xs, [1, 24, 24]);
    const wideOut = await pool.inferBytes(wide, enc);
    expect(pool.lastRun.every((t) => t.spills === 0)).toBe(true);
    // The same key bytes as `pool` (each serialization draws fresh relinearization keys).
    const spillDirs = async (): Promise<string[]> => (await readdir(tmpdir())).filter((f) => f.startsWith('cipherml-spill-'));
    const spillBefore = new Set(await spillDirs());
    const tight = await InferencePool.create(publicKey, { threads: 2, threadHeapMiB: 64 });
    try {
      const spilled = await tight.inferBytes(wide, enc);
      const stats = tight.lastRun;
      expect(stats.reduce((a, t) => a + t.spills, 0)).toBeGreaterThan(100);
      expect(stats.reduce((a, t) => a + t.reloads, 0)).toBeGreaterThan(0);
      // Spilling is serialization: the very same ciphertexts come out.
      expect(Buffer.from(spilled).equals(Buffer.from(wideOut))).toBe(true);
      // Spilled values went to a private temporary folder, removed with the run.
      expect((await spillDirs()).filter((f) => !spillBefore.has(f))).toEqual([]);
    } finally {
      await tight.close();
    }
    const data = new Float64Array(4 * 576);
    xs.forEach((v, i) => data.set(v, i * 576));
    const input = { dims: [4, 1, 24, 24], data };
    const ref = runPlain(wide, input);
    const tol = errorDeviation(wide, input).map((sd) => sd * UNIT);
    decryptOutput(client, wideOut).data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(tol[i]!));
  });

  it('refuses bad inputs with typed errors and keeps serving afterwards', async () => {
    const code = async (f: () => Promise<unknown>): Promise<string | undefined> => {
      try {
        await f();
      } catch (e) {
        return isCipherMLError(e) ? e.code : String(e);
      }
      return undefined;
    };
    const xs = samples(3);
    const enc = encryptBatch(client, xs, [1, 6, 6]);
    expect(await code(() => pool.inferBytes(graph, enc.subarray(0, enc.length - 9)))).toBe('CIPHERML_E_FORMAT_TRUNCATED');
    expect(await code(() => pool.inferBytes(graph, encryptSingle(client, xs, [1, 6, 6])))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(await code(() => pool.inferBytes(graph, encryptBatch(client, xs.map((x) => x.subarray(0, 35)), [35])))).toBe('CIPHERML_E_INFERENCE_INPUT_SHAPE');
    const other = await CkksContext.create(client.params);
    try {
      expect(await code(() => pool.inferBytes(graph, encryptBatch(other, xs, [1, 6, 6])))).toBe('CIPHERML_E_KEY_MISMATCH');
    } finally {
      other.delete();
    }
    // Fails inside a thread (inputs one level down: not fresh encryptions), after which every
    // thread is reset and the pool serves the next request.
    const low = Array.from({ length: 36 }, () => {
      using v = client.encryptVector(new Float64Array(3).fill(0.5));
      return client.toLevel(v, v.level - 1);
    });
    const lowBytes = serializeCiphertexts(client, low, { format: 'cipherml-he-tensor', packing: 'batch', batch: 3, dims: [1, 6, 6], chunks: 1 });
    for (const v of low) v.delete();
    expect(await code(() => pool.inferBytes(graph, lowBytes))).toBe('CIPHERML_E_CKKS_CIPHERTEXT_INVALID');
    const ok = decryptOutput(client, await pool.inferBytes(graph, enc));
    const ref = plain(xs);
    ok.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(ref.tol[i]!));
    expect(await code(() => InferencePool.create(new Uint8Array(10), { threads: 1 }))).toMatch(/^CIPHERML_E_FORMAT_/);
    expect(await code(() => InferencePool.create(serializePublicContext(client), { threads: 0 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    await expect(InferencePool.create(publicKey, { threadHeapMiB: 32 })).rejects.toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: 'threadHeapMiB' });
    // A thread whose SEAL heap passes the limit stops the run with a typed error (at the real
    // 4 GiB limit SEAL spins instead of failing), and the pool serves the next request.
    const capped = await InferencePool.create(publicKey, { threads: 2, wasmLimitMiB: 16 });
    try {
      await expect(capped.inferBytes(graph, enc)).rejects.toMatchObject({ code: 'CIPHERML_E_HE_HEAP_EXHAUSTED', param: 'heapMiB' });
    } finally {
      await capped.close();
    }
    expect(decryptOutput(client, await pool.inferBytes(graph, enc)).dims).toEqual([3, 3]);
    const closed = await InferencePool.create(serializePublicContext(client), { threads: 1 });
    await closed.close();
    expect(await code(() => closed.inferBytes(graph, enc))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('EncryptionPool', () => {
  it('encrypts on threads what the calling thread would, for both packings; refuses bad input', async () => {
    const graph = model();
    const client = await CkksContext.create(PARAMS, { galoisSteps: compileSingle(graph, 4096).galoisSteps });
    const pool = await EncryptionPool.create(serializeSecretKey(client), { threads: 2 });
    try {
      const xs = Array.from({ length: 4 }, () => Float64Array.from({ length: 36 }, () => rand() * 2));
      const data = new Float64Array(4 * 36);
      xs.forEach((x, i) => data.set(x, i * 36));
      const input = { dims: [4, 1, 6, 6], data };
      const ref = runPlain(graph, input);
      const sd = errorDeviation(graph, input);
      const tol = sd.map((e) => e * UNIT);
      // The single plan's maps add key switches: its unit counts the rotations per map.
      const plan = compileSingle(graph, 4096);
      const perMap = plan.cost.rotations / plan.steps.filter((st) => st.kind === 'map').length;
      const singleUnit = NOISE_TAIL * ckksErrorUnit(PARAMS.scaleBits, PARAMS.polyModulusDegree, { dataPrimes: PARAMS.coeffModulusBits.length - 1, keySwitches: perMap });
      const tolSingle = sd.map((e) => e * singleUnit);
      const batch = await pool.encryptBatch(xs, [1, 6, 6]);
      // Same format as the calling thread's file: same size up to zstd's few bytes.
      expect(Math.abs(batch.length - encryptBatch(client, xs, [1, 6, 6]).length)).toBeLessThan(0.01 * batch.length);
      const viaBatch = decryptOutput(client, inferBytes(client, graph, batch));
      viaBatch.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(tol[i]!));
      const viaSingle = decryptOutput(client, inferBytes(client, graph, await pool.encryptSingle(xs, [1, 6, 6])));
      expect(viaSingle.dims).toEqual([4, 3]);
      viaSingle.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!)).toBeLessThan(tolSingle[i]!));
      await expect(pool.encryptBatch([new Float64Array(35)], [1, 6, 6])).rejects.toMatchObject({ code: 'CIPHERML_E_INFERENCE_INPUT_SHAPE' });
      await expect(pool.encryptBatch([], [1, 6, 6])).rejects.toMatchObject({ code: 'CIPHERML_E_INFERENCE_INPUT_SHAPE' });
      await expect(EncryptionPool.create(serializePublicContext(client), { threads: 1 })).rejects.toMatchObject({ code: expect.stringMatching(/^CIPHERML_E_FORMAT_/) });
    } finally {
      await pool.close();
      client.delete();
    }
    await expect(pool.encryptBatch([new Float64Array(36)], [1, 6, 6])).rejects.toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT' });
  });
});
