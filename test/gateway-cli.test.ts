import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliBin } from './helpers.ts';

// The issue-17 flags as a user types them (separate processes).
const dir = mkdtempSync(join(tmpdir(), 'cipherml-gw-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gateway and serve flags of the job lifecycle', () => {
  it('refuses a non-loopback gateway address, an unset local-token variable and a refresh timeout out of range, naming the flag', async () => {
    const [host, envVar, timeout] = await Promise.all([
      cli('gateway', 'serve', '--service', 'http://127.0.0.1:9', '--token', 't', '--host', '0.0.0.0', '--port', '0', '--key-dir', dir),
      cli('gateway', 'serve', '--service', 'http://127.0.0.1:9', '--token', 't', '--port', '0', '--key-dir', dir, '--local-token-env', 'CIPHERML_NO_SUCH_VAR_17'),
      cli('serve', '--data', join(dir, 'svc'), '--port', '0', '--refresh-timeout', '0'),
    ]);
    expect(host.code).not.toBe(0);
    expect(host.stderr).toMatch(/CIPHERML_E_INVALID_ARGUMENT: --host: .*loopback only/);
    expect(envVar.code).not.toBe(0);
    expect(envVar.stderr).toContain('CIPHERML_NO_SUCH_VAR_17');
    expect(timeout.code).not.toBe(0);
    expect(timeout.stderr).toContain('--refresh-timeout');
  });

  it('gateway serve prints a fresh local token once and listens on 127.0.0.1', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, [cliBin, 'gateway', 'serve', '--service', 'http://127.0.0.1:9', '--token', 't', '--port', '0', '--key-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (/\n[A-Za-z0-9_-]{43}\n/.test(out)) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
      const token = /\n([A-Za-z0-9_-]{43})\n/.exec(out)![1]!;
      expect((await fetch(`${url}/encrypt/data/predict`, { method: 'POST' })).status).toBe(401);
      const typed = await fetch(`${url}/nope`, { headers: { authorization: `Bearer ${token}` } });
      expect(((await typed.json()) as { error: { code: string } }).error.code).toBe('CIPHERML_E_INVALID_ARGUMENT');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
