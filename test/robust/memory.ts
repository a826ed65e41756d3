import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Bytes this thread's JS heap and its off-heap buffers still hold after two full collections:
 * what a run retains, unlike RSS, which keeps the allocator's high-water mark and V8's unswept
 * garbage (the 10,000-call fuzzers' RSS rose 215–266 MiB while this stayed within 2 MiB).
 *
 * @example
 * ```ts
 * const before = retainedBytes();
 * await work();
 * expect(retainedBytes() - before).toBeLessThan(32 << 20);
 * ```
 */
export function retainedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** How often (in calls) the fuzzers measure `retainedBytes`: a full collection costs milliseconds. */
export const RETAINED_EVERY = 500;
