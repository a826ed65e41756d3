import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Every fenced ```sh block of README.md and docs/modes.md runs as written, as one bash script
 * (`set -euo pipefail`), in a fresh copy of the repository's tracked files (node_modules linked,
 * not reinstalled). A block whose first line is a comment saying it is "skipped by
 * test/slow/readme.test.ts" (another machine, a project of your own, or run verbatim by .ci/run)
 * is listed as skipped under its name.
 */

const root = join(import.meta.dirname, '..', '..');
const DOCS = ['README.md', 'docs/modes.md'];

interface Block {
  readonly name: string;
  readonly script: string;
  readonly skip: string | undefined;
}

function blocks(file: string, text: string): Block[] {
  const out: Block[] = [];
  const re = /^```sh\n([\s\S]*?)^```$/gm;
  let heading = '(top)';
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    for (const h of text.slice(last, m.index).matchAll(/^#+ (.+)$/gm)) heading = h[1]!;
    last = m.index;
    const script = m[1]!;
    const first = script.split('\n')[0] ?? '';
    const skip = /skipped by test\/slow\/readme\.test\.ts/.test(first) ? first.replace(/^#\s*/, '') : undefined;
    out.push({ name: `${file} § ${heading} #${out.filter((b) => b.name.startsWith(`${file} § ${heading} `)).length + 1}`, script, skip });
  }
  return out;
}

let copy: string;

beforeAll(async () => {
  copy = await mkdtemp(join(tmpdir(), 'cipherml-readme-'));
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter((f) => f !== '');
  for (const f of files) {
    await mkdir(dirname(join(copy, f)), { recursive: true });
    await cp(join(root, f), join(copy, f)).catch(() => undefined); // files deleted in the work tree
  }
  await symlink(join(root, 'node_modules'), join(copy, 'node_modules'));
});

afterAll(async () => {
  if (copy !== undefined) await rm(copy, { recursive: true, force: true });
});

function runBlock(script: string, cwd: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`], {
      cwd,
      detached: true, // its own process group: background servers are killed with it
      env: { ...process.env, PATH: `${join(cwd, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}`, CI: 'true' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[timed out after ${timeoutMs} ms]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGTERM'); // leftovers of the block (a server it started)
      } catch {
        // none left
      }
      resolve({ code, output });
    });
  });
}

const all: Block[] = [];
for (const file of DOCS) all.push(...blocks(file, await readFile(join(root, file), 'utf8')));

describe('every shell block of the README and docs/modes.md runs as written', () => {
  it('finds the blocks', () => {
    expect(all.length).toBeGreaterThanOrEqual(8);
  });
  for (const block of all) {
    if (block.skip !== undefined) {
      it.skip(`${block.name} (${block.skip})`, () => undefined);
      continue;
    }
    it(block.name, async () => {
      // Each block starts from its own fresh copy, as a reader following only that section.
      const dir = await mkdtemp(join(tmpdir(), 'cipherml-readme-block-'));
      try {
        await cp(copy, dir, { recursive: true, verbatimSymlinks: true });
        const r = await runBlock(block.script, dir, 540_000);
        expect(r.code, `${block.script}\n--- output ---\n${r.output.slice(-4000)}`).toBe(0);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 600_000);
  }
});
