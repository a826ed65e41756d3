import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The folder holding cipherml's own package.json, found by walking up from this module (works
 * from `src/` in a checkout and from `dist/` in an installed package).
 *
 * @example
 * ```ts
 * const data = join(packageRoot(), 'examples', 'data');
 * ```
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === 'cipherml') return (cached = dir);
      } catch {
        // an unreadable package.json on the way up is not ours
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cipherml: cannot locate its own package.json');
    dir = up;
  }
}
