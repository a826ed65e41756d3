import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** bin/cipherml.js of this checkout. */
export const bin: string = join(import.meta.dirname, '..', '..', 'bin', 'cipherml.js');

/**
 * Runs `cipherml demo homo-lr ARGS --json` as its own process; resolves with its exit code, the
 * last stdout line parsed as the JSON summary ({} when there is none) and all of stderr.
 */
export function homoLrDemo(args: readonly string[]): Promise<{ code: number | null; last: Record<string, unknown>; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'demo', 'homo-lr', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      let last: Record<string, unknown> = {};
      try {
        last = JSON.parse(out.trim().split('\n').at(-1) || '{}') as Record<string, unknown>;
      } catch {
        // A run that failed before its summary: the caller's exit-code check reports stderr.
      }
      resolve({ code, last, stderr: err });
    });
  });
}
