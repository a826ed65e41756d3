import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksContext, writeKeyFiles } from '../../src/ckks/index.ts';
import { defences, resetDefences } from '../../src/core/defences.ts';
import { startGatewayServer } from '../../src/gateway/index.ts';
import type { RunningGatewayServer } from '../../src/gateway/index.ts';
import { codeOfAsync } from '../helpers.ts';
import { errorCode, rawRequest } from './http.ts';

// Adversary: a web page the gateway's user opens in a browser on the same machine. It can make
// the browser send requests to 127.0.0.1:PORT, and with DNS rebinding (its own name resolving to
// 127.0.0.1) same-origin ones whose Host is the page's name; it does not know the local token.
// The gateway must encrypt nothing for it. Each defence is shown alone, then switched off (the
// src/core/defences.ts hooks) to show the same request getting a ciphertext back.

const root = mkdtempSync(join(tmpdir(), 'cipherml-gw-server-'));
let gw: RunningGatewayServer;
let port: number;
beforeAll(async () => {
  mkdirSync(join(root, 'keys', 'm@1'), { recursive: true });
  // Small parameters: the refusals are what is tested, the ciphertext only shows a request got through.
  const ctx = await CkksContext.create({ polyModulusDegree: 4096, coeffModulusBits: [40, 20, 40], scaleBits: 20 });
  try {
    await writeKeyFiles(join(root, 'keys', 'm@1', 'ckks'), ctx);
  } finally {
    ctx.delete();
  }
  // No service behind it: the encryption calls need only the local key.
  gw = await startGatewayServer({ service: 'http://127.0.0.1:9', token: 'unused', keyDir: join(root, 'keys') });
  port = Number(new URL(gw.url).port);
});
afterAll(async () => {
  resetDefences();
  await gw?.close();
  rmSync(root, { recursive: true, force: true });
});

const body = JSON.stringify({ model: 'm/1', features: 'a,b\n1,2\n' });
const predict = (headers: Record<string, string>) => rawRequest(`${gw.url}/encrypt/data/predict`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('gateway local HTTP server', () => {
  it('listens on loopback only and refuses any other address', async () => {
    expect(new URL(gw.url).hostname).toBe('127.0.0.1');
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.org']) {
      expect(await codeOfAsync(() => startGatewayServer({ service: 'http://127.0.0.1:9', token: 't', keyDir: root, host }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    }
  });

  it('answers its own user: loopback Host and the local token', async () => {
    const ok = await predict({ host: `127.0.0.1:${port}`, authorization: `Bearer ${gw.localToken}` });
    expect(ok.status).toBe(200);
    expect(ok.body.length).toBeGreaterThan(1000);
    expect((await predict({ host: `localhost:${port}`, authorization: `Bearer ${gw.localToken}` })).status).toBe(200);
  });

  it('refuses a request without the local token (401 CIPHERML_E_GATEWAY_UNAUTHENTICATED); without the check the page gets a ciphertext', async () => {
    for (const auth of [undefined, 'Bearer wrong-token-of-the-same-size-as-the-real-one', `Bearer ${gw.localToken}x`, gw.localToken]) {
      const r = await predict({ host: `127.0.0.1:${port}`, origin: 'https://attacker.example', 'content-type': 'text/plain', ...(auth === undefined ? {} : { authorization: auth }) });
      expect([r.status, errorCode(r.body)]).toEqual([401, 'CIPHERML_E_GATEWAY_UNAUTHENTICATED']);
    }
    defences.gatewayToken = false;
    try {
      const r = await predict({ host: `127.0.0.1:${port}`, origin: 'https://attacker.example' });
      expect(r.status).toBe(200);
    } finally {
      resetDefences();
    }
  });

  it('refuses a DNS-rebound request whose Host is the page\'s name (421 CIPHERML_E_GATEWAY_HOST_REFUSED), even with the token; without the check it is answered', async () => {
    for (const host of [`attacker.example:${port}`, 'attacker.example', `127.0.0.1:${port + 1}`, `127.0.0.1.attacker.example:${port}`]) {
      const r = await predict({ host, origin: `http://${host}`, authorization: `Bearer ${gw.localToken}` });
      expect([host, r.status, errorCode(r.body)]).toEqual([host, 421, 'CIPHERML_E_GATEWAY_HOST_REFUSED']);
    }
    defences.gatewayHostCheck = false;
    try {
      expect((await predict({ host: `attacker.example:${port}`, authorization: `Bearer ${gw.localToken}` })).status).toBe(200);
    } finally {
      resetDefences();
    }
  });

  it('answers typed errors: unknown route, bad body, malformed CSV, missing key', async () => {
    const auth = { host: `127.0.0.1:${port}`, authorization: `Bearer ${gw.localToken}`, 'content-type': 'application/json' };
    const cases: [string, string, string, number, string][] = [
      ['GET', '/', '', 400, 'CIPHERML_E_INVALID_ARGUMENT'],
      ['POST', '/encrypt/data/predict', '{"model": 5}', 400, 'CIPHERML_E_INVALID_ARGUMENT'],
      ['POST', '/encrypt/data/predict', '{not json', 400, 'CIPHERML_E_INVALID_ARGUMENT'],
      ['POST', '/encrypt/data/predict', JSON.stringify({ model: 'm/1', features: 'a,b\n1,x\n' }), 400, 'CIPHERML_E_CSV_INVALID'],
      ['POST', '/encrypt/data/predict', JSON.stringify({ model: 'other/1', features: 'a\n1\n' }), 400, 'CIPHERML_E_IO'],
    ];
    for (const [method, path, b, status, code] of cases) {
      const r = await rawRequest(`${gw.url}${path}`, { method, headers: auth, ...(b === '' ? {} : { body: b }) });
      expect([path, b, r.status, errorCode(r.body)]).toEqual([path, b, status, code]);
    }
  });
});
