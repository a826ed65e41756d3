import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';

/**
 * The browser suites' shared setup (test/slow/console-*.test.ts): Debian's chromium driven by
 * playwright-core through `executablePath` (no browser is ever downloaded), a service on a fresh
 * data directory, and a recording proxy in front of it that keeps every request body the service
 * receives, so that each suite can scan them for plaintext and key material.
 */

/** The chromium the suites drive (`apt-get install -y chromium`, or CIPHERML_CHROMIUM). */
export const CHROMIUM = process.env['CIPHERML_CHROMIUM'] ?? '/usr/bin/chromium';
export const REPO = join(import.meta.dirname, '..', '..');

/**
 * Whether the suite can run: chromium is at {@link CHROMIUM}. Without it the suite is skipped
 * with a warning naming `suite`; with CI=true its absence throws (.ci/run installs it).
 */
export function chromiumPresent(suite: string): boolean {
  const present = existsSync(CHROMIUM);
  if (!present && process.env['CI'] === 'true') throw new Error(`CI=true but no chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (the browser test never downloads one)`);
  if (!present) console.warn(`${suite} SKIPPED: no chromium at ${CHROMIUM} (apt-get install -y chromium, or set CIPHERML_CHROMIUM)`);
  return present;
}

/** One request body the service received through the proxy. */
export interface ReceivedBody {
  readonly method: string;
  readonly path: string;
  readonly body: Buffer;
}

/** A running harness; {@link ConsoleHarness.close} stops all of it. */
export interface ConsoleHarness {
  /** A fresh temporary directory (the service's data under `data/`), removed by close. */
  readonly root: string;
  readonly svc: RunningService;
  /** The proxy's origin: the address the browser uses. */
  readonly url: string;
  readonly browser: Browser;
  /** The screenshot directory (emptied at start; under tmp/, gitignored). */
  readonly shots: string;
  /** Every non-empty request body the service received, in order. */
  readonly received: ReceivedBody[];
  close(): Promise<void>;
}

/**
 * Starts the service (one heavy thread) on a fresh temporary data directory, the recording proxy
 * and headless chromium; screenshots go to `tmp/<screens>/` in the repository. Whatever started is
 * stopped again if a later step fails.
 *
 * @example
 * ```ts
 * const h = await startConsoleHarness({ tmpPrefix: 'cipherml-console-', screens: 'console-screens' });
 * const page = await h.browser.newPage();
 * await page.goto(`${h.url}/`);
 * await h.close();
 * ```
 */
export async function startConsoleHarness(o: { readonly tmpPrefix: string; readonly screens: string }): Promise<ConsoleHarness> {
  const root = mkdtempSync(join(tmpdir(), o.tmpPrefix));
  const shots = join(REPO, 'tmp', o.screens);
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const received: ReceivedBody[] = [];
  let svc: RunningService | undefined;
  let proxy: Server | undefined;
  let browser: Browser | undefined;
  const close = async (): Promise<void> => {
    await browser?.close();
    await new Promise((r) => (proxy === undefined ? r(undefined) : proxy.close(r)));
    await svc?.close();
    rmSync(root, { recursive: true, force: true });
    console.log(`console screenshots: ${shots}`);
  };
  try {
    const service = await startService({ dataDir: join(root, 'data'), port: 0, heavyThreads: 1 });
    svc = service;
    // Forwards as is (Host included, so the console's same-origin checks see the page's origin).
    const p = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length > 0) received.push({ method: req.method!, path: req.url!, body });
        const up = request(`${service.url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
        });
        up.on('error', (e) => res.writeHead(502).end(String(e)));
        up.end(body);
      });
    });
    proxy = p;
    await new Promise<void>((r) => p.listen(0, '127.0.0.1', r));
    const a = p.address();
    const url = `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    return { root, svc: service, url, browser, shots, received, close };
  } catch (e) {
    await close();
    throw e;
  }
}
