// postinstall: builds the OPTIONAL GMP accelerator (native/gmp) with node-gyp.
//
// Invariants:
//   - always exits 0 and prints exactly one line: the addon is a speed-up, pure BigInt is the
//     default-correct fallback (src/core/bigmath/gmp.ts returns null when the addon is absent);
//   - never downloads: node-gyp always runs with a nodedir whose include/node/node_api.h exists
//     (configured nodedir, the running Node's prefix, /usr, or node-gyp's header cache), else skip;
//   - CIPHERML_NATIVE=0 skips the build; CIPHERML_NATIVE_TIMEOUT_MS bounds it (default 300 s).
// The full node-gyp output goes to native/gmp/build/build-native.log.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'gmp');
const addonFile = join(addonDir, 'build', 'Release', 'cipherml_gmp.node');
const logFile = join(addonDir, 'build', 'build-native.log');
const timeoutMs = Number(process.env.CIPHERML_NATIVE_TIMEOUT_MS) > 0 ? Number(process.env.CIPHERML_NATIVE_TIMEOUT_MS) : 300_000;

function finish(line) {
  console.log(`cipherml: optional GMP accelerator ${line}`);
  process.exit(0);
}

function skip(reason) {
  finish(`skipped (${reason}); using pure BigInt`);
}

const isFile = (p) => {
  try {
    accessSync(p, constants.R_OK);
    return true;
  } catch {
    return false;
  }
};

/** First executable named `name` on PATH, or null. */
function onPath(name) {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD').split(';') : [''];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    for (const ext of exts) {
      const p = join(dir, name + ext);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return null;
}

const MULTIARCH = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  arm: 'arm-linux-gnueabihf',
  ia32: 'i386-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
  riscv64: 'riscv64-linux-gnu',
};

function findGmpHeader() {
  const dirs = ['/usr/include', '/usr/include/x86_64-linux-gnu'];
  if (MULTIARCH[process.arch]) dirs.push(`/usr/include/${MULTIARCH[process.arch]}`);
  dirs.push('/usr/local/include', '/opt/homebrew/include');
  for (const v of [process.env.CPATH, process.env.C_INCLUDE_PATH]) if (v) dirs.push(...v.split(delimiter).filter(Boolean));
  return dirs.map((d) => join(d, 'gmp.h')).find(isFile) ?? null;
}

const hasNodeApi = (dir) => isFile(join(dir, 'include', 'node', 'node_api.h'));

/** [nodedir to pass on the command line or null if node-gyp reads a configured one, reason if none]. */
function findNodedir() {
  const configured = process.env.npm_config_nodedir;
  if (configured) {
    return hasNodeApi(configured) ? { arg: null } : { reason: `configured nodedir ${configured} has no include/node/node_api.h` };
  }
  const cacheRoot =
    process.env.npm_config_devdir ||
    (process.platform === 'darwin'
      ? join(homedir(), 'Library', 'Caches', 'node-gyp')
      : join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'node-gyp'));
  const candidates = [resolve(dirname(process.execPath), '..'), '/usr', join(cacheRoot, process.versions.node)];
  const found = candidates.find(hasNodeApi);
  return found ? { arg: found } : { reason: `Node headers not found (no nodedir, no ${candidates.join(' or ')}) and downloads are disabled` };
}

function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && isFile(fromNpm)) return fromNpm;
  const onPathGyp = onPath('node-gyp');
  if (onPathGyp) return onPathGyp;
  const npmCli = process.env.npm_execpath || (onPath('npm') && realpathSync(onPath('npm')));
  const candidates = [];
  if (npmCli) candidates.push(join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find(isFile) ?? null;
}

function missingTools() {
  if (process.platform === 'win32') return null;
  if (!['cc', 'gcc', 'clang'].some(onPath)) return 'no C compiler (cc/gcc/clang) on PATH';
  if (!onPath('make')) return 'make not found on PATH';
  if (!process.env.NODE_GYP_FORCE_PYTHON && !['python3', 'python'].some(onPath)) return 'python3 not found on PATH (node-gyp needs it)';
  return null;
}

/** Runs cmd in its own process group; kills the whole group on timeout. */
function run(cmd, args) {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { cwd: addonDir, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: process.platform !== 'win32' });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (process.platform === 'win32') child.kill('SIGKILL');
        else process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolvePromise({ code: -1, out: `${out}\n${err.message}`, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, out, timedOut });
    });
  });
}

function writeLog(text) {
  try {
    mkdirSync(dirname(logFile), { recursive: true });
    writeFileSync(logFile, text);
    return relative(root, logFile);
  } catch {
    return null;
  }
}

async function main() {
  if (process.env.CIPHERML_NATIVE === '0') skip('CIPHERML_NATIVE=0');
  if (!isFile(join(addonDir, 'binding.gyp'))) skip('native/gmp sources not present');
  if (!findGmpHeader()) skip('gmp.h not found; install libgmp-dev (Debian/Ubuntu) or gmp-devel to enable');
  const nodedir = findNodedir();
  if (nodedir.reason) skip(nodedir.reason);
  const gyp = findNodeGyp();
  if (!gyp) skip('node-gyp not found');
  const tools = missingTools();
  if (tools) skip(tools);

  const args = ['rebuild', '--release'];
  if (nodedir.arg) args.push(`--nodedir=${nodedir.arg}`);
  const [cmd, cmdArgs] = gyp.endsWith('.js') ? [process.execPath, [gyp, ...args]] : [gyp, args];
  const started = Date.now();
  const result = await run(cmd, cmdArgs);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const log = writeLog(`$ ${[cmd, ...cmdArgs].join(' ')}\n(cwd ${addonDir})\n\n${result.out}\nexit ${result.code}${result.timedOut ? ' (timed out)' : ''}\n`);
  const where = log ? `; log: ${log}` : '';
  if (result.timedOut) skip(`node-gyp timed out after ${timeoutMs / 1000} s${where}`);
  if (result.code !== 0 || !isFile(addonFile)) {
    const firstError = result.out
      .split('\n')
      .map((l) => l.trim())
      .find((l) => /(error|fatal)[: ]/i.test(l) && !l.startsWith('gyp info'));
    skip(`build failed${firstError ? `: ${firstError.slice(0, 160)}` : ` (exit ${result.code})`}${where}`);
  }

  // Known answer 4^13 mod 497 = 445 = 0x01bd, in a separate process so a bad binary cannot take this one down.
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      `const g = require(${JSON.stringify(addonFile)});
       if (g.powm(Buffer.from([4]), Buffer.from([13]), Buffer.from([1, 0xf1])).toString('hex') !== '01bd') process.exit(3);
       process.stdout.write(g.version());`,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (probe.status !== 0) {
    const why = (probe.stderr ?? '').split('\n').find((l) => l.includes('Error')) ?? `exit ${probe.status}`;
    skip(`built but failed its load test under Node ${process.versions.node}: ${why.trim().slice(0, 160)}${where}`);
  }
  finish(`built (libgmp ${probe.stdout}, Node-API 8, ${seconds} s)`);
}

main().catch((err) => skip(`unexpected error: ${err instanceof Error ? err.message : String(err)}`));
