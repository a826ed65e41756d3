import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import type { Plugin } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const repoSrc = here('../src/');
const webSrc = here('src/');

/**
 * The browser runs the same protocol code as the CLI gateway (src/ckks envelope and key/ciphertext
 * serialization, src/ml/encrypted-lr.ts packing), so its uploads are the service's format by
 * construction. Those modules reach a few Node built-ins; on the browser path they resolve to the
 * implementations in web/src/platform/ (SHA-256, CRC-32, zstd, Buffer, a URL-fetching readFile;
 * file helpers throw). Only modules under src/ are redirected; the app itself uses browser APIs.
 */
function browserPlatform(): Plugin {
  const shims: Record<string, string> = {
    'node:crypto': here('src/platform/crypto.ts'),
    'node:zlib': here('src/platform/zlib.ts'),
    'node:fs/promises': here('src/platform/unavailable.ts'),
    'node:fs': here('src/platform/unavailable.ts'),
    'node:events': here('src/platform/unavailable.ts'),
    'node:path': here('src/platform/unavailable.ts'),
  };
  const buffer = here('src/platform/buffer.ts');
  const sealWasm = here('../node_modules/node-seal/dist/seal_throws.wasm');
  return {
    name: 'cipherml-browser-platform',
    enforce: 'pre',
    resolveId(source, importer) {
      if (importer === undefined) return null;
      // The app's own code uses browser APIs only; Node built-ins reach the bundle only through src/ and the shims.
      if (source.startsWith('node:') && importer.startsWith(webSrc) && !importer.startsWith(here('src/platform/'))) this.error(`${importer} imports ${source}: the browser app may not use Node built-ins`);
      if (!importer.startsWith(repoSrc)) return null;
      if (source in shims) return shims[source];
      if (source.endsWith('/core/node-version.ts')) return here('src/platform/empty.ts');
      if (source.startsWith('node:')) this.error(`${importer} imports ${source}, which has no browser implementation in web/src/platform/`);
      return null;
    },
    transform(code, id) {
      if (!id.startsWith(repoSrc)) return null;
      let out = code;
      if (/\bBuffer\./.test(out)) out = `import { Buffer } from ${JSON.stringify(buffer)};\n${out}`;
      if (id.endsWith('/ckks/seal.ts')) {
        // The wasm's URL: node-seal's own file in Node.js, the hashed build asset here.
        const from = "new URL('seal_throws.wasm', import.meta.resolve('node-seal'))";
        if (!out.includes(from)) this.error(`src/ckks/seal.ts no longer reads the wasm as ${from}: update web/vite.config.ts`);
        out = `import sealWasmUrl from ${JSON.stringify(`${sealWasm}?url`)};\n${out.replace(from, 'new URL(sealWasmUrl, location.href)')}`;
      }
      return out === code ? null : { code: out, map: null };
    },
  };
}

// The console's browser app. `npm run build:web` writes it to src/console/static/ (committed and
// shipped in the npm package, so installing cipherml builds nothing). No third-party plugins:
// Preact's JSX goes through Vite's own transformer, and nothing is fetched outside the npm registry.
export default defineConfig({
  root: here('.'),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  plugins: [browserPlatform()],
  build: {
    outDir: here('../src/console/static'),
    emptyOutDir: true,
    target: 'es2022',
    // No inline script anywhere: the CSP allows only this origin's script files.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
