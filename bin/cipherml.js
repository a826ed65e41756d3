#!/usr/bin/env node
// Entry shim: in a source checkout run the TypeScript directly (Node 24 strips types); in an
// installed package (under node_modules, where Node does not strip types) run the built dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('../src/cli/main.ts', import.meta.url);
const useSource = existsSync(fileURLToPath(source)) && !fileURLToPath(import.meta.url).includes('/node_modules/');
const { main } = await import(useSource ? source.href : new URL('../dist/src/cli/main.js', import.meta.url).href);
process.exitCode = await main(process.argv);
