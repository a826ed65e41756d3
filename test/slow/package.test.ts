import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The package as a user gets it: `npm pack`, then a fresh project that runs plain
 * `npm install <tarball>` (no flags; the npm registry is reachable), imports every subpath from
 * an `.mjs` file under Node 24, is refused with CIPHERML_E_NODE_VERSION under an older Node when
 * one is installed (/usr/bin/node), and type-checks a `.ts` consumer.
 */

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'node_modules', '.bin');
const env = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` };
const SUBPATHS = ['', '/core', '/paillier', '/ml', '/fl', '/secagg', '/attest', '/service', '/gateway', '/ckks', '/inference', '/enclave'] as const;

let dir: string;
let project: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cipherml-pack-'));
  await run('npm', ['pack', '--pack-destination', dir], { cwd: root, env, maxBuffer: 64 << 20 });
  const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
  if (tarball === undefined) throw new Error('npm pack wrote no tarball');
  project = join(dir, 'consumer');
  await run('mkdir', ['-p', project]);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  await run('npm', ['install', join(dir, tarball)], { cwd: project, env, maxBuffer: 64 << 20 });
}, 600_000);

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('the packed package in a fresh project', () => {
  it('installs without the heavy or optional dependencies', () => {
    // One protobuf runtime (@bufbuild/protobuf): ONNX types are generated, not onnx-proto's protobufjs.
    for (const absent of ['onnxruntime-node', 'pg', 'bullmq', 'vitest', 'typescript', 'onnx-proto', 'protobufjs']) expect(existsSync(join(project, 'node_modules', absent)), absent).toBe(false);
    expect(existsSync(join(project, 'node_modules', 'cipherml', 'dist', 'src', 'index.js'))).toBe(true);
  });

  it('imports every subpath from an .mjs file on Node 24', async () => {
    const lines = SUBPATHS.map((s) => `{ const m = await import('cipherml${s}'); if (Object.keys(m).length === 0) throw new Error('cipherml${s} exports nothing'); console.log('cipherml${s}', Object.keys(m).length); }`);
    await writeFile(join(project, 'all.mjs'), `${lines.join('\n')}\n`);
    const { stdout } = await run(join(bin, 'node'), ['all.mjs'], { cwd: project, env });
    expect(stdout.trim().split('\n')).toHaveLength(SUBPATHS.length);
  });

  it('runs the installed CLI', async () => {
    const { stdout } = await run(join(bin, 'node'), [join(project, 'node_modules', '.bin', 'cipherml'), '--version'], { cwd: project, env });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('refuses an older Node with CIPHERML_E_NODE_VERSION on every subpath', async (ctx) => {
    const old = '/usr/bin/node';
    if (!existsSync(old)) ctx.skip();
    const { stdout: v } = await run(old, ['--version']);
    if (Number(/^v(\d+)/.exec(v)?.[1]) >= 24) ctx.skip();
    for (const s of SUBPATHS) {
      const r = await run(old, ['--input-type=module', '-e', `await import('cipherml${s}')`], { cwd: project }).then(
        () => ({ stderr: '' }),
        (e: { stderr: string }) => e,
      );
      expect(r.stderr, `cipherml${s}`).toContain('CIPHERML_E_NODE_VERSION');
      expect(r.stderr, `cipherml${s}`).toContain('needs Node.js 24 or newer');
    }
  });

  it('type-checks a .ts consumer against the published declarations', async () => {
    await writeFile(
      join(project, 'consumer.ts'),
      [
        "import { CipherMLError, isCipherMLError } from 'cipherml';",
        "import { generatePaillierKeyPair, encryptVector, decryptVector, PackedCiphertext } from 'cipherml/paillier';",
        "import { resolveRunConfig, simulate } from 'cipherml/fl';",
        "import { loadCsvDataset } from 'cipherml/ml';",
        "import { openStorage, redisConnection } from 'cipherml/service';",
        "import { ServiceClient } from 'cipherml/gateway';",
        "import { CkksContext } from 'cipherml/ckks';",
        "import { parseOnnx } from 'cipherml/inference';",
        "import * as secagg from 'cipherml/secagg';",
        "import * as core from 'cipherml/core';",
        'const { publicKey, privateKey } = await generatePaillierKeyPair({ bits: 1024 });',
        'const sum: PackedCiphertext = PackedCiphertext.sum([await encryptVector(publicKey, [1, 2])]);',
        'const out: Float64Array = await decryptVector(privateKey, sum);',
        "const config = resolveRunConfig({ flags: { numServerRounds: 1 } });",
        "const n: number = config.numServerRounds;",
        "const r: { host: string; port: number } = redisConnection('redis://127.0.0.1:6379');",
        'export const used = [CipherMLError, isCipherMLError, simulate, loadCsvDataset, openStorage, ServiceClient, CkksContext, parseOnnx, secagg, core, out, n, r];',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2024', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] },
        files: ['consumer.ts'],
      }),
    );
    const r = await run(join(bin, 'tsc'), ['-p', 'tsconfig.json'], { cwd: project, env }).then(
      () => ({ stdout: '' }),
      (e: { stdout: string }) => e,
    );
    // Errors inside third-party declarations are theirs; the consumer and cipherml's own .d.ts must be clean.
    const ours = r.stdout.split('\n').filter((l) => l.startsWith('consumer.ts') || l.includes('node_modules/cipherml/'));
    expect(ours).toEqual([]);
  });
});
