import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBin } from './helpers.ts';

const runFile = promisify(execFile);

async function runIn(cwd: string, args: readonly string[]): Promise<{ code: number }> {
  try {
    await runFile(process.execPath, [cliBin, ...args], { cwd, maxBuffer: 1 << 24 });
    return { code: 0 };
  } catch (e) {
    return { code: (e as { code: number }).code };
  }
}

// The CLI's error presentation as a user sees it (separate processes): typed codes naming the
// flag the user typed, case-specific advice, no stack trace unless --debug, and commands that
// refuse before doing work.

const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at [^\n]+:\d+:\d+\)?\n/);

describe('CLI errors speak the user\'s language', () => {
  let dir: string;
  let busy: Server;
  let port: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-cli-errors-'));
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    port = (busy.address() as { port: number }).port;
  });
  afterAll(async () => {
    busy.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('names --port when the service port is in use, without a stack trace', async () => {
    const r = await cli('serve', '--port', String(port), '--data', join(dir, 'svc'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CIPHERML_E_ADDRESS_IN_USE: --port:');
    expect(r.stderr).toContain(`port ${port}`);
    noStack(r.stderr);
    const debug = await cli('serve', '--port', String(port), '--data', join(dir, 'svc'), '--debug');
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('names --heap-mib when the inference heap budget is out of range, before reading any file', async () => {
    for (const bad of ['10', '4000', '1.5', 'lots']) {
      const r = await cli('he', 'inference', '--model', join(dir, 'none.onnx'), '--key', join(dir, 'none.pub'), '--in', join(dir, 'none.enc'), '--out', join(dir, 'out.enc'), '--heap-mib', bad);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('CIPHERML_E_INVALID_ARGUMENT: --heap-mib:');
      expect(r.stderr).toContain('[64, 3584]');
      noStack(r.stderr);
    }
  });

  it('names the address when the key authority or server port is in use', async () => {
    const r = await cli('key-authority', '--address', `127.0.0.1:${port}`, '--key-bits', '1024', '--json');
    expect(r.code).toBe(1);
    // Without --identity the authority first prints the development-mode warning as a JSON line.
    const lines = r.stdout.trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'warning', warning: 'insecure-dev-tokens' });
    expect(JSON.parse(lines.at(-1)!).error).toMatchObject({ code: 'CIPHERML_E_ADDRESS_IN_USE', param: 'address' });
    expect(r.stderr).toContain('--address');
    noStack(r.stderr);
  });

  it('refuses an out-of-range port naming the flag', async () => {
    const serve = await cli('serve', '--port', '70000');
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain('--port must be a TCP port from 0 to 65535');
    const server = await cli('server', '--address', '127.0.0.1:70000', '--json');
    expect(server.code).toBe(1);
    expect(JSON.parse(server.stdout).error).toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: '--address' });
  });

  it('creates the key folder and tells a public key from an insecure secret key', async () => {
    const key = join(dir, 'keys', 'nested', 'k');
    expect((await cli('paillier', 'keygen', '-o', key, '--bits', '1024')).code).toBe(0);
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    const again = await cli('paillier', 'keygen', '-o', key, '--bits', '1024', '--json');
    expect(JSON.parse(again.stdout).error).toMatchObject({ code: 'CIPHERML_E_FILE_EXISTS', param: '--out' });
    expect(again.stderr).toContain('--overwrite');
    const one = join(dir, 'one.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(one, '[1]'));
    expect((await cli('paillier', 'encrypt', '-k', `${key}.pub`, '-i', one, '-o', join(dir, 'one.enc'))).code).toBe(0);
    const pub = await cli('paillier', 'decrypt', '-k', `${key}.pub`, '-i', join(dir, 'one.enc'), '--json');
    expect(JSON.parse(pub.stdout).error).toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--key' });
    expect(pub.stderr).toContain('is a public key file');
    expect(pub.stderr).not.toContain('chmod');
  });

  it('fails fast when a simulation cannot fill a round, naming the key', async () => {
    const r = await cli('simulate', '--config', 'examples/homo-lr/run-secagg.toml', '--num-supernodes', '3', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: '--num-supernodes' });
    expect(r.stderr).toContain('min-available-clients = 5');
    const bad = await cli('simulate', '--run-config', 'num-server-rounds', '--json');
    expect(JSON.parse(bad.stdout).error).toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: '--run-config' });
    const unknown = await cli('simulate', '--run-config', 'num-server-round=3', '--json');
    expect(JSON.parse(unknown.stdout).error.message).toContain('num-server-rounds');
  });

  it('refuses --key-holder threshold in simulate, naming the flag and the commands that run it, before asking for the threshold keys', async () => {
    // Before, a bare key-holder=threshold asked for `threshold`, and with every threshold key given
    // the in-process workers crashed on CIPHERML_E_KEY_NOT_PINNED after the key was announced.
    const complete = 'strategy=paillier key-holder=threshold threshold=2-of-3 threshold-public-key=nowhere.pub threshold-holders=127.0.0.1:1,127.0.0.1:2';
    for (const args of [
      ['simulate', '--run-config', 'strategy=paillier key-holder=threshold', '--json'],
      ['simulate', '--run-config', complete, '--json'],
      ['simulate', '--key-holder', 'threshold', '--strategy', 'paillier', '--json'],
      ['simulate', '--config', 'examples/fl-mnist/run.toml', '--key-holder', 'threshold', '--json'],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      const error = JSON.parse(r.stdout).error as { code: string; param: string; message: string };
      expect(error).toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: 'key-holder' });
      expect(error.message).toContain('--key-holder threshold');
      expect(error.message).toContain('cipherml demo homo-lr --key-holder threshold');
      expect(error.message).toContain('cipherml fl nn-server');
      noStack(r.stderr);
    }
  });

  it('refuses bad --tee and threshold settings of fl nn-server / nn-worker before reading any data, naming the flag', async () => {
    const nowhere = ['--data-dir', join(dir, 'no-such-data')];
    const expectRefusal = async (args: string[], code: string, param: string, text: string): Promise<void> => {
      const r = await cli(...args, ...nowhere, '--json');
      expect(r.code, args.join(' ')).toBe(1);
      const error = JSON.parse(r.stdout.trim().split('\n').at(-1)!).error as { code: string; param: string; message: string };
      expect(error, args.join(' ')).toMatchObject({ code, param });
      expect(error.message).toContain(text);
      noStack(r.stderr);
    };
    await expectRefusal(['fl', 'nn-server', '--tee', 'sgx'], 'CIPHERML_E_TEE_UNAVAILABLE', '--tee', '--tee sgx');
    await expectRefusal(['fl', 'nn-server', '--tee', 'simulation', '--strategy', 'paillier'], 'CIPHERML_E_CONFIG_INVALID', 'identity', 'identity mode');
    const ids = join(dir, 'nn-ids');
    await import('node:fs/promises').then((fs) => fs.mkdir(ids, { recursive: true }));
    for (const [role, id] of [['server', 'server'], ['worker', '1']] as const) expect((await cli('identity', 'create', '--role', role, '--id', id, '--out', join(ids, `${id}.id`))).code).toBe(0);
    const roster = join(ids, 'roster.json');
    expect((await cli('identity', 'roster', '--out', roster, join(ids, 'server.id.pub'), join(ids, '1.id.pub'))).code).toBe(0);
    const server = ['fl', 'nn-server', '--identity', join(ids, 'server.id'), '--roster', roster];
    await expectRefusal([...server, '--tee', 'simulation'], 'CIPHERML_E_CONFIG_INVALID', 'strategy', 'strategy is "plain"');
    await expectRefusal([...server, '--tee', 'simulation', '--strategy', 'paillier', '--server-optimizer', 'fedadam'], 'CIPHERML_E_CONFIG_INVALID', '--server-optimizer', 'attested configuration');
    // A worker pinned to a threshold key needs the key file, its fingerprint and its identity together.
    const worker = ['fl', 'nn-worker', '--id', '1', '--identity', join(ids, '1.id'), '--roster', roster];
    await expectRefusal([...worker, '--threshold-public-key', join(dir, 'threshold.pub')], 'CIPHERML_E_INVALID_ARGUMENT', '--threshold-fingerprint', 'together');
    await expectRefusal(['fl', 'nn-worker', '--id', '1', '--threshold-public-key', join(dir, 'threshold.pub'), '--threshold-fingerprint', 'ab'.repeat(32), '--insecure-dev-tokens'], 'CIPHERML_E_INVALID_ARGUMENT', '--identity', 'together');
  }, 60_000);

  it('applies --run-config to a neural-network run (runtime and [app] keys) and refuses a key of neither or a bad app value, naming it', { timeout: 120_000 }, async () => {
    const nn = ['simulate', '--config', 'examples/fl-mnist/run.toml', '--run-dir', join(dir, 'nn-run'), '--json'];
    const misspelled = await cli(...nn, '--run-config', 'datasett=fashion-mnist');
    expect(misspelled.code).toBe(1);
    expect(JSON.parse(misspelled.stdout).error).toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: 'datasett' });
    expect(JSON.parse(misspelled.stdout).error.message).toContain('nor an app key (dataset,');
    const badValue = await cli(...nn, '--run-config', 'dataset=cifar10');
    expect(JSON.parse(badValue.stdout).error).toMatchObject({ code: 'CIPHERML_E_CONFIG_INVALID', param: '--run-config dataset' });
    // Before, the NN path dropped --run-config without a word and trained on MNIST.
    const small = 'dataset=fashion-mnist train-limit=64 test-limit=32 num-clients=2 num-server-rounds=1 min-fit-clients=2 min-evaluate-clients=2 min-available-clients=2 local-epochs=1';
    const run = await cli(...nn, '--run-config', small);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { dataset: string; clients: number; rounds: number };
    expect(summary).toMatchObject({ dataset: 'fashion-mnist', clients: 2 });
  });

  it('gives --redis written after `serve worker` to the worker', async () => {
    const missing = await cli('serve', 'worker', '--data', join(dir, 'w'), '--json');
    expect(JSON.parse(missing.stdout).error).toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--redis' });
    // The value reaches the worker (which then checks the URL) instead of a "required option" usage error.
    const given = await cli('serve', 'worker', '--redis', 'http://not-redis', '--data', join(dir, 'w'), '--json');
    expect(given.code).toBe(1);
    expect(JSON.parse(given.stdout).error).toMatchObject({ code: 'CIPHERML_E_INVALID_ARGUMENT', param: '--redis' });
    expect(JSON.parse(given.stdout).error.message).toContain('expected redis://');
  });

  it('tells a worker given the run secret instead of its token exactly that', async () => {
    // The run config refuses port 0: take a free port and release it for the server.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const free = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const server = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'cipherml.js'), 'server', '--json', '--address', `127.0.0.1:${free}`, '--workers', '1', '--rounds', '1', '--token', 's3cret', '--join-timeout', '60', '--run-dir', join(dir, 'run')]);
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /"event":"listening"[^\n]*?"address":"([^"]+)"/.exec(out);
          if (m !== null) resolve(m[1]!);
        });
        server.once('exit', () => reject(new Error(`server exited: ${out}`)));
      });
      const r = await cli('worker', '--server', address, '--train-set', 'examples/data/breast_homo_guest.csv', '--id', '1', '--token', 's3cret', '--json');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('CIPHERML_E_UNAUTHENTICATED: --token: "1" sent the run secret itself instead of its own token');
      expect(r.stderr).toContain('cipherml token --secret <secret> --id 1');
      const wrong = await cli('worker', '--server', address, '--train-set', 'examples/data/breast_homo_guest.csv', '--id', '1', '--token', 'not-the-token', '--json');
      expect(wrong.stderr).toContain('was not derived from this server');
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('writes nothing into the working folder for a refused command', async () => {
    // A fresh working folder: refused server, simulate and keygen commands must leave it empty
    // (no run folder, no key file), whatever other commands left in the repository.
    const cwd = await mkdtemp(join(tmpdir(), 'cipherml-cli-cwd-'));
    try {
      for (const args of [
        ['server', '--address', '127.0.0.1:70000', '--json'],
        ['simulate', '--num-supernodes', '1', '--rounds', '1'],
        ['paillier', 'keygen', '-o', 'keys/k', '--bits', '1000'],
      ]) {
        const r = await runIn(cwd, args);
        expect(r.code, args.join(' ')).not.toBe(0);
      }
      expect(await readdir(cwd)).toEqual([]);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
