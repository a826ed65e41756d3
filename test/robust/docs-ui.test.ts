import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_DOCUMENT, startService } from '../../src/service/index.ts';
import type { RunningService } from '../../src/service/index.ts';

// The API reference at /docs: Swagger UI served from the npm package (no CDN), over the
// OpenAPI document generated from the route table, with schemas and "Try it out".

const root = mkdtempSync(join(tmpdir(), 'cipherml-docs-'));
let svc: RunningService;
beforeAll(async () => {
  svc = await startService({ dataDir: root, port: 0 });
});
afterAll(async () => {
  await svc?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('/docs', () => {
  it('serves Swagger UI from this origin only, under a CSP without foreign or inline script', async () => {
    const page = await fetch(`${svc.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    for (const [, attrs, inline] of scripts) {
      expect(inline!.trim()).toBe('');
      const src = /src="([^"]+)"/.exec(attrs!)![1]!;
      expect(src).toMatch(/^\/docs\/static\//);
      const asset = await fetch(`${svc.url}${src}`);
      expect([src, asset.status]).toEqual([src, 200]);
      expect((await asset.text()).length).toBeGreaterThan(100);
    }
    expect(html).not.toMatch(/https?:\/\//);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
  });

  it('describes every route with its request and response schemas and enables Try it out', async () => {
    const doc = (await (await fetch(`${svc.url}/docs/json`)).json()) as typeof OPENAPI_DOCUMENT;
    expect(doc.paths).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT.paths)));
    const fit = doc.paths['/api/v1/{model}/{version}/fit']!['post'] as { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> }; responses: Record<string, unknown> };
    expect(Object.keys(fit.requestBody.content['application/json']!.schema.properties)).toContain('numberOfEpochs');
    expect(Object.keys(fit.responses)).toEqual(expect.arrayContaining(['202', '400', '401', '409']));
    const cancel = doc.paths['/api/v1/{model}/{version}/jobs/{jobId}/cancel']!['post'] as { responses: Record<string, { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }> };
    expect(Object.keys(cancel.responses['200']!.content['application/json']!.schema.properties!)).toContain('status');
    const init = await (await fetch(`${svc.url}/docs/static/swagger-initializer.js`)).text();
    expect(init).toContain('"tryItOutEnabled":true');
    expect(init).toContain("url: resolveUrl('./json')"); // /docs/json, this origin
  });
});
