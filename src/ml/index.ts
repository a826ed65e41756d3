/**
 * cipherml/ml — datasets and models used by the federated capabilities.
 *
 * @example
 * ```ts
 * import { loadCsvDataset } from 'cipherml/ml';
 * const ds = await loadCsvDataset('examples/data/breast_homo_test.csv', { label: 'y' });
 * ```
 */
export { loadCsvDataset, parseCsvDataset } from './csv.ts';
export type { CsvDataset, CsvOptions } from './csv.ts';
