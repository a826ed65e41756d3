import { CipherMLError } from '../core/errors.ts';
import { SeededRng, shuffleInPlace, type Rng } from './rng.ts';

/**
 * Partitioning a labelled dataset among federated clients, as flwr-datasets does:
 *
 * - `iid`: a seeded shuffle cut into near-equal parts (IidPartitioner).
 * - `shards:K`: sort by label, cut into clients·K equal shards, deal K random shards to each client
 *   (McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
 *   AISTATS 2017, §3: 200 shards of 300 for 100 clients, 2 each) (ShardPartitioner).
 * - `dirichlet:α`: for every class, draw p ~ Dir(α·1_n) over the n clients and split that class's
 *   samples in those proportions (Hsu et al. 2019; flwr-datasets DirichletPartitioner); redrawn
 *   until every client holds at least `minPartitionSize` samples, then refused with a typed error.
 *
 * Every sample goes to exactly one client; the same seed gives the same partition.
 */

/** A parsed partition scheme. */
export type PartitionScheme = { readonly kind: 'iid' } | { readonly kind: 'shards'; readonly shardsPerClient: number } | { readonly kind: 'dirichlet'; readonly alpha: number };

/** One client's part. */
export interface ClientPart {
  /** Dataset indices, ascending. */
  readonly indices: Uint32Array;
  /** Samples per class. */
  readonly histogram: readonly number[];
}

/** A partition of a dataset. */
export interface Partition {
  readonly scheme: PartitionScheme;
  readonly clients: readonly ClientPart[];
}

function invalid(message: string, param: string, details?: Record<string, unknown>): CipherMLError {
  return new CipherMLError('CIPHERML_E_PARTITION_INVALID', message, { param, ...(details === undefined ? {} : { details }) });
}

/**
 * Parses `iid`, `shards:K` or `dirichlet:α` (as the CLI and run config spell it).
 *
 * @example
 * ```ts
 * parsePartition('dirichlet:0.5'); // { kind: 'dirichlet', alpha: 0.5 }
 * ```
 */
export function parsePartition(text: string, param = '--partition'): PartitionScheme {
  if (text === 'iid') return { kind: 'iid' };
  const m = /^(shards|dirichlet):([^:]+)$/.exec(text);
  if (m === null) throw invalid(`expected iid, shards:K or dirichlet:α, got ${JSON.stringify(text)}`, param);
  const v = Number(m[2]);
  if (m[1] === 'shards') {
    if (!Number.isInteger(v) || v < 1) throw invalid(`shards:K needs an integer K ≥ 1 shards per client, got ${JSON.stringify(m[2])}`, param);
    return { kind: 'shards', shardsPerClient: v };
  }
  if (!Number.isFinite(v) || v <= 0) throw invalid(`dirichlet:α needs a concentration α > 0, got ${JSON.stringify(m[2])}`, param, { alpha: m[2] });
  return { kind: 'dirichlet', alpha: v };
}

/** The scheme as text (inverse of {@link parsePartition}). */
export function partitionName(s: PartitionScheme): string {
  return s.kind === 'iid' ? 'iid' : s.kind === 'shards' ? `shards:${s.shardsPerClient}` : `dirichlet:${s.alpha}`;
}

/** Options of {@link partitionDataset}. */
export interface PartitionOptions {
  readonly clients: number;
  readonly seed: number;
  /** Classes of the labels (default: 1 + the largest label). */
  readonly classes?: number;
  /** Dirichlet: fewest samples a client may get (flwr-datasets min_partition_size, default 10). */
  readonly minPartitionSize?: number;
  /** Dirichlet: draws before giving up (default 10, as flwr-datasets). */
  readonly maxTries?: number;
  /** Name of the option that gave the scheme, for messages. */
  readonly param?: string;
}

/** Gamma(shape, 1) by Marsaglia & Tsang (ACM TOMS 26(3), 2000), with the shape < 1 boost. */
function gamma(rng: Rng, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(1 - rng.nextFloat(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      // Box–Muller normal
      x = Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.nextFloat();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function dirichlet(rng: Rng, alpha: number, n: number): Float64Array {
  const g = Float64Array.from({ length: n }, () => gamma(rng, alpha));
  const s = g.reduce((a, b) => a + b, 0);
  // α → 0 can underflow every draw: fall back to one client taking the class.
  if (!(s > 0)) {
    g.fill(0);
    g[rng.nextInt(n)] = 1;
    return g;
  }
  return g.map((x) => x / s);
}

/**
 * Partitions `labels` among `options.clients` clients by `scheme`.
 *
 * Refused with `CIPHERML_E_PARTITION_INVALID`: fewer than 1 client, more clients than samples,
 * shards that would be empty (clients·K > samples), and a Dirichlet draw that leaves a client
 * below `minPartitionSize` after `maxTries` attempts.
 *
 * @example
 * ```ts
 * const p = partitionDataset(train.labels, parsePartition('dirichlet:0.5'), { clients: 10, seed: 42 });
 * console.log(p.clients.map((c) => c.histogram));
 * ```
 */
export function partitionDataset(labels: ArrayLike<number>, scheme: PartitionScheme, options: PartitionOptions): Partition {
  const n = options.clients;
  const total = labels.length;
  const param = options.param ?? '--partition';
  let classes = options.classes ?? 0;
  if (options.classes === undefined) for (let i = 0; i < labels.length; i++) classes = Math.max(classes, labels[i]! + 1);
  if (!Number.isInteger(n) || n < 1) throw invalid(`needs at least 1 client, got ${n}`, '--clients');
  if (n > total) throw invalid(`${n} clients cannot each get data from ${total} samples`, '--clients', { clients: n, samples: total });
  const rng = new SeededRng(options.seed);
  let parts: number[][];
  if (scheme.kind === 'iid') {
    const order = shuffleInPlace(Uint32Array.from({ length: total }, (_, i) => i), rng);
    parts = Array.from({ length: n }, (_, c) => Array.from(order.subarray(Math.floor((c * total) / n), Math.floor(((c + 1) * total) / n))));
  } else if (scheme.kind === 'shards') {
    const k = scheme.shardsPerClient;
    const shards = n * k;
    if (shards > total) throw invalid(`shards:${k} for ${n} clients needs ${shards} shards of at least one sample, but there are ${total} samples`, param, { shards, samples: total });
    // Stable sort by label, then cut into equal shards (McMahan et al. §3).
    const byLabel = Array.from({ length: total }, (_, i) => i).sort((a, b) => labels[a]! - labels[b]! || a - b);
    const order = shuffleInPlace(Uint32Array.from({ length: shards }, (_, i) => i), rng);
    parts = Array.from({ length: n }, (_, c) => {
      const mine: number[] = [];
      for (let j = 0; j < k; j++) {
        const s = order[c * k + j]!;
        for (let i = Math.floor((s * total) / shards); i < Math.floor(((s + 1) * total) / shards); i++) mine.push(byLabel[i]!);
      }
      return mine;
    });
  } else {
    const { alpha } = scheme;
    if (!(alpha > 0) || !Number.isFinite(alpha)) throw invalid(`dirichlet:α needs α > 0, got ${alpha}`, param, { alpha });
    const minSize = options.minPartitionSize ?? Math.min(10, Math.floor(total / n));
    const tries = options.maxTries ?? 10;
    const byClass: number[][] = Array.from({ length: classes }, () => []);
    for (let i = 0; i < total; i++) byClass[labels[i]!]!.push(i);
    for (let attempt = 0; ; attempt++) {
      parts = Array.from({ length: n }, () => []);
      for (const members of byClass) {
        const idx = shuffleInPlace(Uint32Array.from(members), rng);
        const p = dirichlet(rng, alpha, n);
        let start = 0;
        let acc = 0;
        for (let c = 0; c < n; c++) {
          acc += p[c]!;
          const end = c === n - 1 ? idx.length : Math.min(idx.length, Math.round(acc * idx.length));
          for (let i = start; i < end; i++) parts[c]!.push(idx[i]!);
          start = Math.max(start, end);
        }
      }
      const smallest = Math.min(...parts.map((p) => p.length));
      if (smallest >= Math.max(1, minSize)) break;
      if (attempt + 1 >= tries) {
        throw invalid(
          `dirichlet:${alpha} left a client with ${smallest} samples (fewer than ${Math.max(1, minSize)}) in each of ${tries} draws for ${n} clients; raise α, use fewer clients or more data`,
          param,
          { alpha, clients: n, smallest },
        );
      }
    }
  }
  const clients = parts.map((p, c) => {
    if (p.length === 0) throw invalid(`client ${c + 1} would get no data`, param, { client: c + 1 });
    const indices = Uint32Array.from(p).sort();
    const histogram = new Array<number>(classes).fill(0);
    for (const i of indices) histogram[labels[i]!]!++;
    return { indices, histogram };
  });
  return { scheme, clients };
}

/**
 * One line per client: its sample count and label histogram.
 *
 * @example
 * ```ts
 * for (const line of describePartition(p)) console.error(line);
 * ```
 */
export function describePartition(p: Partition): string[] {
  return p.clients.map((c, i) => `client ${String(i + 1).padStart(2)}: ${String(c.indices.length).padStart(6)} samples  [${c.histogram.map((h) => String(h).padStart(5)).join(' ')}]`);
}
