import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { openStorage, startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';

/**
 * The API reference at /docs in a real browser (Debian's chromium through playwright-core; never
 * a browser download): Swagger UI runs under the page's CSP with no console error, lists the
 * routes, and "Try it out" with a bearer token from Authorize calls the API and shows the answer.
 */

const CHROMIUM = process.env['CIPHERML_CHROMIUM'] ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present && process.env['CI'] === 'true') throw new Error(`CI=true but no chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);

describe.skipIf(!present)('/docs in headless chromium', () => {
  const root = mkdtempSync(join(tmpdir(), 'cipherml-docs-browser-'));
  let svc: RunningService;
  let browser: Browser;
  let token: string;
  beforeAll(async () => {
    const s = await openStorage({ dataDir: root });
    token = await s.createToken((await s.ensureUser('alice', 'user')).id);
    await s.close();
    svc = await startService({ dataDir: root, port: 0, heavyThreads: 1 });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('renders every route and runs Try it out with the bearer token from Authorize', { timeout: 120_000 }, async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    const foreign: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(svc.url) && !r.url().startsWith('data:')) foreign.push(r.url());
    });
    await page.goto(`${svc.url}/docs`);
    await page.waitForSelector('.opblock', { timeout: 60_000 });
    expect(await page.locator('.opblock').count()).toBeGreaterThan(20);
    await page.click('button.authorize');
    await page.fill('.modal-ux input[type=text], .modal-ux input:not([type])', token);
    await page.locator('.modal-ux button.authorize').first().click();
    await page.locator('.modal-ux button.btn-done').first().click();
    const op = page.locator('.opblock', { has: page.locator('.opblock-summary-path', { hasText: /^\/api\/v1\/whoami$/ }) });
    await op.locator('.opblock-summary').click();
    const tryOut = op.locator('button.try-out__btn');
    if ((await tryOut.count()) > 0 && /try it out/i.test(await tryOut.innerText())) await tryOut.click();
    await op.locator('button.execute').click();
    const live = op.locator('.live-responses-table tr.response .response-col_status').first();
    await live.waitFor({ timeout: 30_000 });
    expect((await live.innerText()).trim()).toBe('200');
    expect(await op.locator('.live-responses-table tr.response .response-col_description').first().innerText()).toContain('"alice"');
    expect(foreign).toEqual([]);
    expect(problems).toEqual([]);
  });
});
