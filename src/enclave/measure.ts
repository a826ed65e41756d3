import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { measureBundle, type Measurement } from '../attest/index.ts';
import { packageRoot } from '../core/paths.ts';
import type { RunConfig } from '../fl/config.ts';
import { packingFor } from '../fl/run.ts';

/**
 * The measurement of the aggregator a run config starts: the bundle of this installation
 * (dist/src when built, else src), the Node binary, and the security-relevant settings (TEE kind,
 * min-fit, key size, packing). Workers put it in their policy's `measurement`.
 *
 * @example
 * ```ts
 * const { measurement } = await measureAggregator('simulation', config);
 * ```
 */
export async function measureAggregator(tee: string, config: Pick<RunConfig, 'minFitClients' | 'keyBits' | 'packingFractionalBits' | 'packingIntegerBits' | 'minAvailableClients'>): Promise<Measurement & { bundle: string }> {
  const root = packageRoot();
  const bundle = existsSync(join(root, 'dist', 'src')) ? join(root, 'dist', 'src') : join(root, 'src');
  const m = await measureBundle({ bundle, config: { tee, minFitClients: config.minFitClients, keyBits: config.keyBits, packing: packingFor(config as RunConfig) } });
  return { ...m, bundle };
}
