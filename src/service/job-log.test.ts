import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_LOG_LINE_MAX, JOB_LOG_MAX, jobEvents, logJob, logPatch } from './job-log.ts';
import { openStorage } from './storage/index.ts';
import type { Storage } from './storage/index.ts';

// The per-job event log on the real SQLite storage: bounded, ordered, and never written into a
// job that is already final (a worker's late event cannot touch a cancelled job).
const root = mkdtempSync(join(tmpdir(), 'cipherml-joblog-'));
let storage: Storage;
let userId: string;
let modelId: string;
beforeAll(async () => {
  storage = await openStorage({ dataDir: root });
  const owner = await storage.ensureUser('owner', 'owner');
  userId = (await storage.ensureUser('alice', 'user')).id;
  modelId = (await storage.deployModel(owner.id, 'm', '1')).id;
});
afterAll(async () => {
  await storage?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('job event log', () => {
  it(`keeps the last ${JOB_LOG_MAX} events in order and counts the dropped ones`, async () => {
    const job = await storage.createJob(userId, modelId, 'fit');
    for (let i = 0; i < JOB_LOG_MAX + 36; i++) await logJob(storage, job.id, 'epoch', `epoch ${i}`, { progress: i / 100 });
    const row = (await storage.getJob(job.id))!;
    const log = jobEvents(row.figures);
    expect(log).toHaveLength(JOB_LOG_MAX);
    expect(row.figures['logDropped']).toBe(36);
    expect(log[0]!.message).toBe('epoch 36');
    expect(log.at(-1)!.message).toBe(`epoch ${JOB_LOG_MAX + 35}`);
    expect(log.every((e, i) => i === 0 || e.t >= log[i - 1]!.t)).toBe(true);
    // The patch travels with the event, in the same update.
    expect(row.progress).toBeCloseTo((JOB_LOG_MAX + 35) / 100);
  });

  it('cuts long lines and keeps other figures', () => {
    const p = logPatch({ refreshes: 2 }, 'failed', 'x'.repeat(1000), 5);
    expect(p.log).toEqual([{ t: 5, event: 'failed', message: `${'x'.repeat(JOB_LOG_LINE_MAX - 1)}…` }]);
    expect(p.logDropped).toBe(0);
  });

  it('leaves a final job unchanged: a late event after cancel is not recorded', async () => {
    const job = await storage.createJob(userId, modelId, 'infer');
    await logJob(storage, job.id, 'queued', 'queued');
    await logJob(storage, job.id, 'cancelled', 'cancelled by its user', { status: 'cancelled' });
    const late = await logJob(storage, job.id, 'running', 'late worker event', { status: 'running' });
    expect(late.status).toBe('cancelled');
    expect(jobEvents((await storage.getJob(job.id))!.figures).map((e) => e.event)).toEqual(['queued', 'cancelled']);
  });
});
