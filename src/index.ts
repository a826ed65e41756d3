/**
 * cipherml — privacy-preserving machine learning for TypeScript. The root export re-exports the
 * error catalog; each capability is its own subpath (`cipherml/paillier`, …) so that importing
 * one never loads another's dependencies.
 *
 * @example
 * ```ts
 * import { CipherMLError } from 'cipherml';
 * import { generatePaillierKeyPair } from 'cipherml/paillier';
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import './core/node-version.ts';
export { CipherMLError, ERROR_CATALOG, isCipherMLError } from './core/errors.ts';
export type { ErrorCode } from './core/errors.ts';
