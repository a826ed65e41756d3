import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashToken, openStorage, SCHEMA_VERSION } from './index.ts';
import type { Storage } from './index.ts';

const pgUrl = process.env['CIPHERML_TEST_POSTGRES_URL'];
if (pgUrl === undefined || pgUrl === '') console.warn('storage tests: CIPHERML_TEST_POSTGRES_URL is not set, PostgreSQL backend SKIPPED (SQLite runs)');

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cipherml-storage-'));
  dirs.push(d);
  return d;
}

interface Backend { readonly name: string; readonly open: () => Promise<Storage>; readonly reopen: () => Promise<Storage> }
const sqliteDir = tempDir();
const backends: Backend[] = [{ name: 'sqlite', open: () => openStorage({ dataDir: sqliteDir }), reopen: () => openStorage({ dataDir: sqliteDir }) }];
if (pgUrl !== undefined && pgUrl !== '') backends.push({ name: 'postgres', open: () => openStorage({ dataDir: tempDir(), db: pgUrl }), reopen: () => openStorage({ dataDir: tempDir(), db: pgUrl }) });

for (const backend of backends) {
  describe(`storage (${backend.name})`, () => {
    const tag = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

    it('keeps users, hashed tokens, models, blobs, jobs and usage across a reopen', async () => {
      const s = await backend.open();
      const owner = await s.ensureUser(`owner-${tag}`, 'owner');
      const alice = await s.ensureUser(`alice-${tag}`, 'user');
      expect((await s.ensureUser(`alice-${tag}`, 'user')).id).toBe(alice.id);
      const token = await s.createToken(alice.id);
      expect(token).toMatch(/^cml_[A-Za-z0-9_-]{43}$/);
      expect((await s.authenticate(token))?.id).toBe(alice.id);
      expect(await s.authenticate(`${token}x`)).toBeUndefined();
      const model = await s.deployModel(owner.id, `lr-${tag}`, 'v1');
      expect(await s.register(alice.id, model.id)).toBe(true);
      expect(await s.register(alice.id, model.id)).toBe(false);
      const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff);
      await s.putBlob(alice.id, model.id, 'train_data', bytes);
      await s.putBlob(alice.id, model.id, 'model', new Uint8Array([1, 2, 3]));
      await s.putBlob(alice.id, model.id, 'model', new Uint8Array([4, 5]));
      await s.setProfile(alice.id, model.id, { batchSize: 512 });
      const job = await s.createJob(alice.id, model.id, 'fit');
      await s.updateJob(job.id, { status: 'running', progress: 0.5, figures: { epochs: 1 } });
      await s.addUsage(alice.id, model.id, 'bytesIn', 10);
      await s.addUsage(alice.id, model.id, 'bytesIn', 5);
      await s.close();

      const r = await backend.reopen();
      expect((await r.authenticate(token))?.name).toBe(`alice-${tag}`);
      const m = await r.getModel(`lr-${tag}`, 'v1');
      expect(m?.id).toBe(model.id);
      expect(Buffer.from((await r.getBlob(alice.id, model.id, 'train_data'))!).equals(Buffer.from(bytes))).toBe(true);
      expect([...(await r.getBlob(alice.id, model.id, 'model'))!]).toEqual([4, 5]);
      expect(await r.getProfile(alice.id, model.id)).toEqual({ batchSize: 512 });
      const j = await r.getJob(job.id);
      expect(j).toMatchObject({ status: 'running', progress: 0.5, figures: { epochs: 1 } });
      expect((await r.listJobs({ status: ['running'], userId: alice.id })).map((x) => x.id)).toEqual([job.id]);
      expect(await r.getUsage(alice.id, model.id)).toEqual({ bytesIn: 15 });
      expect(await r.countRegistrations(model.id)).toBe(1);
      expect(await r.unregister(alice.id, model.id)).toBe(true);
      expect(await r.getBlob(alice.id, model.id, 'train_data')).toBeUndefined();
      expect(await r.getJob(job.id)).toBeUndefined();
      expect(await r.getUsage(alice.id, model.id)).toEqual({});
      await r.close();
    });

    it('keeps one blob per kind when many writes race', async () => {
      const s = await backend.open();
      const u = await s.ensureUser(`racer-${tag}`, 'user');
      const owner = await s.ensureUser(`owner2-${tag}`, 'owner');
      const model = await s.deployModel(owner.id, `race-${tag}`, '1');
      await Promise.all(Array.from({ length: 12 }, (_, i) => s.putBlob(u.id, model.id, 'public_context', new Uint8Array([i]))));
      const got = await s.getBlob(u.id, model.id, 'public_context');
      expect(got?.length).toBe(1);
      expect((await s.blobInfo(u.id, model.id, 'public_context'))?.size).toBe(1);
      await s.close();
    });
  });
}

describe('storage (sqlite files)', () => {
  it('stores only token hashes and leaves no stray blob files after replacement', async () => {
    const dir = tempDir();
    const s = await openStorage({ dataDir: dir });
    const u = await s.ensureUser('bob', 'user');
    const token = await s.createToken(u.id);
    const o = await s.ensureUser('own', 'owner');
    const m = await s.deployModel(o.id, 'm', '1');
    for (let i = 0; i < 5; i++) await s.putBlob(u.id, m.id, 'model', new Uint8Array([i, i]));
    await s.close();
    const db = Buffer.concat(readdirSync(dir).filter((f) => f.startsWith('service.db')).map((f) => readFileSync(join(dir, f))));
    expect(db.includes(Buffer.from(token))).toBe(false);
    expect(db.includes(Buffer.from(hashToken(token)))).toBe(true);
    const files = readdirSync(join(dir, 'blobs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(files.length).toBe(1);
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
  });
});
