#!/usr/bin/env node
// Entry shim: in a source checkout run the TypeScript directly (Node 24 strips types); in an
// installed package (under node_modules, where Node does not strip types) run the built dist/.
import { existsSync } from 'node:fs';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `cipherml needs Node.js 24 or newer; this is ${process.version}. In a cipherml checkout, run it through npm (npm run …, npx cipherml …), which uses the Node 24 pinned in devDependencies.\n`,
  );
  process.exit(2);
}
import { fileURLToPath } from 'node:url';

// `--version` alone needs nothing but package.json: answer before loading the CLI.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { readFileSync } = await import('node:fs');
  process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
  process.exit(0);
}

const source = new URL('../src/cli/main.ts', import.meta.url);
const useSource = existsSync(fileURLToPath(source)) && !fileURLToPath(import.meta.url).includes('/node_modules/');
const { main } = await import(useSource ? source.href : new URL('../dist/src/cli/main.js', import.meta.url).href);
// Exit when the command is done, even if a peer left a socket or timer open: a CLI run always ends.
process.exit(await main(process.argv));
