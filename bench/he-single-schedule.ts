import { readFile } from 'node:fs/promises';
import { setChainedSchedule } from '../src/ckks/bsgs.ts';
import { CkksContext, loadSeal, powerOfTwoSteps } from '../src/ckks/index.ts';
import { setKernelEnabled } from '../src/ckks/kernel.ts';
import { calibrate } from '../src/inference/calibrate.ts';
import { runPlain } from '../src/inference/execute.ts';
import { readIdx } from '../src/inference/idx.ts';
import { parseOnnx } from '../src/inference/onnx.ts';
import { compileSingle, packSingleInput, prepareSingle, runSingle } from '../src/inference/single.ts';

/**
 * The single plan of a bundled model, one image, under several configurations in one process
 * (ratios between them are what carries over on a shared machine):
 *
 * - `old`: the ±2^k key set the key budget used to pick for LeNet-5 (23 keys), direct BSGS
 *   rotations (each chaining its non-adjacent form), SEAL's multiply_plain for the diagonals;
 * - `kernel`: the same keys and rotations, the RNS kernel for the diagonal products;
 * - `new`: the plan's own chained keys, the chained schedule and the kernel (the default).
 *
 * One key set at a time: SEAL's wasm heap (at most 4 GiB) holds one prepared LeNet-5 plan
 * (≈ 1.2 GiB of diagonals) comfortably; with two the run slowed by more than 10×.
 *
 *   node bench/he-single-schedule.ts [lenet5_square|mnist_square] [old,new,kernel,old,new]
 */

/** One configuration's figures. */
export interface ScheduleRun {
  readonly config: string;
  readonly keys: number;
  readonly prepareMs: number;
  readonly inferenceMs: number;
  readonly stepMs: readonly number[];
  readonly keySwitches: number;
  readonly maxError: number;
  readonly rssBytes: number;
}

/**
 * Runs the configurations in order.
 *
 * @example
 * ```ts
 * const runs = await runScheduleBench('mnist_square', ['old', 'new']);
 * ```
 */
export async function runScheduleBench(model: string, configs: readonly string[], log: (line: string) => void = () => undefined): Promise<ScheduleRun[]> {
  const data = new URL('../examples/data/mnist/', import.meta.url);
  const images = readIdx(await readFile(new URL('t10k-images-idx3-ubyte.gz', data)));
  const count = images.dims[0]!;
  const calib = Float64Array.from(images.data.subarray((count - 500) * 784), (v) => v / 255);
  const graph = parseOnnx(await readFile(new URL(`../examples/he/${model}.onnx`, import.meta.url)));
  const { graph: cal, keyParams } = calibrate(await loadSeal(), graph, { dims: [500, 1, 28, 28], data: calib }, { packing: 'single' });
  const slots = keyParams.params.polyModulusDegree / 2;
  const plan = compileSingle(cal, slots);
  const steps = { old: powerOfTwoSteps(plan.directSteps, slots), new: [...plan.galoisSteps] };
  const x = Float64Array.from(images.data.subarray(0, 784), (v) => v / 255);
  const want = runPlain(cal, { dims: [1, 1, 28, 28], data: x }).data;
  const runs: ScheduleRun[] = [];
  try {
    for (const config of configs) {
      const keys = config === 'new' ? steps.new : steps.old;
      const ctx = await CkksContext.create(keyParams.params, { galoisSteps: keys });
      try {
        let t = performance.now();
        using prep = prepareSingle(ctx, cal);
        const prepareMs = performance.now() - t;
        setKernelEnabled(config !== 'old');
        setChainedSchedule(config === 'new');
        let keySwitches = 0;
        prep.plan.steps.forEach((st, i) => {
          if (st.kind !== 'map') return;
          for (const m of prep.matrices[i]!) {
            const babies = new Set<number>();
            for (const row of m.plain.values()) for (const b of row.keys()) babies.add(b);
            const giants = [...m.plain.keys()].filter((g) => m.plain.get(g)!.size > 0);
            keySwitches += ctx.rotationScheduleFor([...babies].sort((a, b) => a - b), giants.sort((a, b) => a - b)).switches;
          }
        });
        using input = ctx.encryptVector(packSingleInput(prep.plan, x, ctx.slotCount));
        const stepMs: number[] = [];
        t = performance.now();
        let last = t;
        using y = runSingle(ctx, prep, input, () => {
          const now = performance.now();
          stepMs.push(now - last);
          last = now;
        });
        const inferenceMs = performance.now() - t;
        const got = ctx.decryptVector(y, ctx.slotCount);
        const maxError = Math.max(...prep.plan.outputSlots.map((j, k) => Math.abs(got[j]! - want[k]!)));
        const run = { config, keys: keys.length, prepareMs, inferenceMs, stepMs, keySwitches, maxError, rssBytes: process.memoryUsage().rss };
        runs.push(run);
        log(`${config}: ${run.keys} keys, prepare ${(prepareMs / 1000).toFixed(1)} s, inference ${(inferenceMs / 1000).toFixed(2)} s (steps ${stepMs.map((s) => (s / 1000).toFixed(2)).join(', ')}), ${keySwitches} key switches in the maps, max |Δ| vs plaintext ${maxError.toExponential(2)}, RSS ${(run.rssBytes / 2 ** 20).toFixed(0)} MiB`);
      } finally {
        ctx.delete();
      }
    }
  } finally {
    setKernelEnabled(true);
    setChainedSchedule(true);
  }
  return runs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runScheduleBench(process.argv[2] ?? 'lenet5_square', (process.argv[3] ?? 'old,new,kernel,old,new').split(','), console.log);
}
