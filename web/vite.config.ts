import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The console's browser app. `npm run build:web` writes it to src/console/static/ (committed and
// shipped in the npm package, so installing cipherml builds nothing). No plugins: Preact's JSX
// goes through Vite's own transformer, and nothing is fetched outside the npm registry.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../src/console/static', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // No inline script anywhere: the CSP allows only this origin's script files.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
