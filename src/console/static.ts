import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CipherMLError } from '../core/errors.ts';
import { packageRoot } from '../core/paths.ts';

/**
 * The prebuilt browser app (web/, built by `npm run build:web` into src/console/static/ and
 * committed, so an installed package builds nothing). Files are read once at start into memory
 * (a few hundred KiB) and served from a fixed name table: no path from the URL ever reaches the
 * file system.
 */

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

/** Where the built app ships. */
export function defaultStaticDir(): string {
  return join(packageRoot(), 'src', 'console', 'static');
}

/** Serves `/` (index.html) and `/assets/<name>` from the built app. */
export async function registerStatic(app: FastifyInstance, dir: string = defaultStaticDir()): Promise<void> {
  let index: Buffer | undefined;
  const assets = new Map<string, { bytes: Buffer; type: string }>();
  try {
    index = await readFile(join(dir, 'index.html'));
    for (const name of await readdir(join(dir, 'assets'))) {
      const type = TYPES[extname(name)];
      if (type !== undefined) assets.set(name, { bytes: await readFile(join(dir, 'assets', name)), type });
    }
  } catch {
    index = undefined;
  }
  app.get('/', async (_req, reply) => {
    if (index === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', `the console's built files are missing from ${dir}`, { param: 'url', advice: 'Run `npm run build:web` in a checkout; an installed package ships them.' });
    return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(index);
  });
  app.get('/assets/:name', async (req, reply) => {
    const a = assets.get((req.params as { name: string }).name);
    if (a === undefined) throw new CipherMLError('CIPHERML_E_SERVICE_NOT_FOUND', 'no such console asset', { param: 'url' });
    return reply.header('cache-control', 'public, max-age=31536000, immutable').type(a.type).send(a.bytes);
  });
}
