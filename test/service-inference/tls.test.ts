import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateEnclaveTls } from '../../src/enclave/tls.ts';
import { ServiceClient } from '../../src/gateway/index.ts';
import { startService } from '../../src/service/index.ts';
import { makeTokens } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'cipherml-svc-tls-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('serve over TLS with certificate files; the gateway trusts a private CA', () => {
  it('answers over HTTPS to a client holding the CA, and a client without it cannot connect', { timeout: 30_000 }, async () => {
    const dataDir = join(root, 'data');
    const t = await makeTokens(dataDir);
    const tls = generateEnclaveTls(['127.0.0.1', 'localhost']);
    const other = generateEnclaveTls(['127.0.0.1', 'localhost']);
    const svc = await startService({ dataDir, port: 0, console: false, tls: { cert: Buffer.from(tls.certPem), key: Buffer.from(tls.keyPem) } });
    try {
      expect(svc.url.startsWith('https://')).toBe(true);
      const c = new ServiceClient(svc.url, t.alice, { ca: Buffer.from(tls.certPem) });
      expect(await c.json('GET', '/health')).toEqual({ status: 'ok' });
      expect(await c.json('GET', '/api/v1/models')).toEqual({ models: [] });
      // Typed errors come through the TLS client too.
      await expect(new ServiceClient(svc.url, 'bad', { ca: Buffer.from(tls.certPem) }).json('GET', '/api/v1/models')).rejects.toMatchObject({ code: 'CIPHERML_E_SERVICE_UNAUTHENTICATED' });
      // The system roots do not vouch for the service's certificate, nor does another CA.
      await expect(new ServiceClient(svc.url, t.alice).json('GET', '/health')).rejects.toMatchObject({ code: 'CIPHERML_E_PEER_UNAVAILABLE' });
      await expect(new ServiceClient(svc.url, t.alice, { ca: Buffer.from(other.certPem) }).json('GET', '/health')).rejects.toMatchObject({ code: 'CIPHERML_E_PEER_UNAVAILABLE' });
      // Plain HTTP to the TLS port gets no answer from the API.
      await expect(fetch(svc.url.replace('https://', 'http://') + '/health').then((r) => r.status)).rejects.toThrow();
      expect(() => new ServiceClient(svc.url.replace('https://', 'http://'), t.alice, { ca: Buffer.from(tls.certPem) })).toThrow(/--tls-ca needs an https/);
    } finally {
      await svc.close();
    }
  });
});
