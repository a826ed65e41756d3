import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { MNIST_ONNX, calibrationNpz } from '../service-inference/helpers.ts';
import { chromiumPresent, startConsoleHarness, type ConsoleHarness } from './console-harness.ts';

/**
 * The console's owner page in a real browser (Debian's chromium through playwright-core
 * `executablePath`, as the other console browser tests; skipped locally without it, required with
 * CI=true). A console account promoted to owner by the operator (`serve token role`) deploys a
 * model for training and the bundled MNIST model for encrypted inference from the Models page:
 * the service calibrates the bundle the page packed, and the keyparams it publishes equal those of
 * the same files deployed through the REST API with `packDeployBundle` (what `gateway deploy`
 * sends), so the page's bundle is the CLI's. Undeploy is refused (409, shown) while a user is
 * registered and succeeds after; an account with role `user` has no deploy form and the service
 * refuses its deploy call. Screenshots go to tmp/console-screens-owner/ (gitignored).
 */

const present = chromiumPresent('console owner browser test');
const PASSWORD = 'correct horse battery staple';

describe.skipIf(!present)('web console in headless chromium: owners deploy and undeploy', () => {
  let h: ConsoleHarness;
  let svc: ConsoleHarness['svc'];
  const problems: string[] = [];
  let shot = 0;
  const snap = async (p: Page, name: string): Promise<void> => {
    await p.screenshot({ path: join(h.shots, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  /**
   * Unexpected page errors; an HTTP refusal is expected only where `allowed` says so, and the
   * signed-out page's session probe (401) before sign-up.
   */
  const watch = (p: Page, allowed: (status: number, method: string, path: string) => boolean): void => {
    p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    p.on('response', (r) => {
      const path = new URL(r.url()).pathname;
      const probe = r.status() === 401 && path === '/api/v1/console/session';
      if (r.status() >= 400 && !probe && !allowed(r.status(), r.request().method(), path)) problems.push(`HTTP ${r.status()} ${r.request().method()} ${path}`);
    });
  };
  const signUp = async (p: Page, name: string): Promise<void> => {
    await p.goto(`${svc.url}/`);
    await p.getByTestId('signin-form').waitFor();
    await p.getByText('Create an account').click();
    await p.fill('input[name=name]', name);
    await p.fill('input[name=password]', PASSWORD);
    await p.getByRole('button', { name: 'Sign up' }).click();
    await expect.poll(() => p.getByTestId('user').textContent(), { timeout: 30_000 }).toBe(name);
  };
  const outcome = (p: Page) => async (): Promise<string> => {
    const err = await p.getByTestId('deploy-error').allTextContents();
    return err.length > 0 ? `error: ${err.join(' | ')}` : (await p.getByTestId('deploy-status').allTextContents()).join(' | ');
  };

  beforeAll(async () => {
    h = await startConsoleHarness({ tmpPrefix: 'cipherml-console-owner-', screens: 'console-screens-owner' });
    svc = h.svc;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('an owner deploys for training and for encrypted inference (the service calibrates the page\'s bundle as the CLI\'s), undeploys; a user cannot', async () => {
    const onnxPath = join(h.root, 'mnist_square.onnx');
    const calibPath = join(h.root, 'calibration.npz');
    const calibration = calibrationNpz(8);
    writeFileSync(onnxPath, MNIST_ONNX);
    writeFileSync(calibPath, calibration);

    // ---- a user account: no deploy form; the service refuses its deploy call
    const userCtx = await h.browser.newContext();
    const userPage = await userCtx.newPage();
    watch(userPage, (status, method, path) => status === 403 && method === 'POST' && path === '/api/v1/x/1/deploy_model');
    await signUp(userPage, 'page-user');
    await userPage.getByRole('link', { name: 'Models' }).click();
    await userPage.getByTestId('models').waitFor();
    expect(await userPage.getByTestId('deploy').count()).toBe(0);
    const refused = await userPage.evaluate(async () => {
      const s = (await (await fetch('/api/v1/console/session')).json()) as { csrfToken: string };
      const r = await fetch('/api/v1/x/1/deploy_model', { method: 'POST', headers: { 'x-csrf-token': s.csrfToken } });
      return { status: r.status, code: ((await r.json()) as { error: { code: string } }).error.code };
    });
    expect(refused.status).toBe(403);
    await snap(userPage, 'user-models');

    // ---- an account promoted to owner by the operator deploys from the page
    const ownerCtx = await h.browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await ownerCtx.newPage();
    watch(page, (status, method, path) => status === 409 && method === 'DELETE' && path === '/api/v1/mnist/1/undeploy_model');
    await signUp(page, 'page-owner');
    await svc.storage.setRole('page-owner', 'owner');
    // The page reads the role from its session when it loads.
    await page.goto(`${svc.url}/#/models`);
    await page.reload();
    await page.getByTestId('deploy').waitFor({ timeout: 15_000 });
    await snap(page, 'owner-models-empty');

    await page.fill('form[data-testid=deploy] input[name=name]', 'lr');
    await page.fill('form[data-testid=deploy] input[name=version]', '1');
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect.poll(outcome(page), { timeout: 30_000 }).toMatch(/^deployed lr\/1 at |^error/);
    await page.locator('tr[data-model="lr/1"]').waitFor();

    await page.fill('form[data-testid=deploy] input[name=name]', 'mnist');
    await page.setInputFiles('form[data-testid=deploy] input[name=onnx]', onnxPath);
    await page.setInputFiles('form[data-testid=deploy] input[name=calibration]', calibPath);
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect.poll(outcome(page), { timeout: 300_000, interval: 500 }).toMatch(/for encrypted inference: depth|^error/);
    const line = await outcome(page)();
    expect(line).toMatch(/^deployed mnist\/1 at .*; for encrypted inference: depth \d+, N = \d+, (auto|batch|single) packing, keyparams at \/api\/v1\/mnist\/1\/inference\/keyparams$/);
    await page.locator('tr[data-model="mnist/1"]').waitFor();
    await snap(page, 'owner-deployed');

    // The keyparams the service published for the page's bundle equal those of the same files
    // deployed through the REST API as `gateway deploy` packs them (a second model).
    const owner = await svc.storage.createToken((await svc.storage.getUser('page-owner'))!.id);
    const auth = { authorization: `Bearer ${owner}` };
    const { packDeployBundle } = await import('../../src/inference/deploy-bundle.ts');
    expect((await fetch(`${svc.url}/api/v1/mnist/2/deploy_model`, { method: 'POST', headers: auth })).status).toBe(200);
    const cli = await fetch(`${svc.url}/api/v1/mnist/2/inference/deploy`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: new Uint8Array(packDeployBundle(MNIST_ONNX, calibration)) });
    expect(cli.status).toBe(200);
    const params = async (v: string): Promise<unknown> => (await fetch(`${svc.url}/api/v1/mnist/${v}/inference/keyparams`, { headers: auth })).json();
    const fromPage = await params('1');
    expect(fromPage).toMatchObject({ format: 'cipherml-he-keyparams', depth: expect.any(Number) });
    expect(fromPage).toEqual(await params('2'));

    // ---- undeploy: refused while a user is registered (the page shows the service's 409), then done
    await userPage.reload();
    await userPage.locator('tr[data-model="mnist/1"]').getByRole('button', { name: 'Register', exact: true }).click();
    await expect.poll(() => userPage.locator('tr[data-model="mnist/1"] [data-testid=model-status]').textContent(), { timeout: 15_000 }).toBe('registered');
    await page.locator('tr[data-model="mnist/1"] [data-testid=undeploy]').click();
    await expect.poll(() => page.getByTestId('error').textContent(), { timeout: 15_000 }).toMatch(/CIPHERML_E_SERVICE_CONFLICT/);
    await snap(page, 'owner-undeploy-refused');
    await userPage.locator('tr[data-model="mnist/1"]').getByRole('button', { name: 'Unregister', exact: true }).click();
    await expect.poll(() => userPage.locator('tr[data-model="mnist/1"] [data-testid=model-status]').textContent(), { timeout: 15_000 }).toBe('unregistered');
    await page.locator('tr[data-model="mnist/1"] [data-testid=undeploy]').click();
    await expect.poll(() => page.locator('tr[data-model="mnist/1"]').count(), { timeout: 15_000 }).toBe(0);
    expect((await fetch(`${svc.url}/api/v1/mnist/1`, { headers: auth })).status).toBe(404);
    await page.locator('tr[data-model="lr/1"]').waitFor();
    await snap(page, 'owner-undeployed');

    expect(problems).toEqual([]);
    await ownerCtx.close();
    await userCtx.close();
  });
});
