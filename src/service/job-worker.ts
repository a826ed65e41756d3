import { workerData } from 'node:worker_threads';
import { runJob } from './jobs.ts';
import type { JobStorageRef } from './jobs.ts';
import { openStorage } from './storage/index.ts';

// Worker-thread entry of runFitJobOnThread: one job, own storage connection.
const { ref, jobId } = workerData as { ref: JobStorageRef; jobId: string };
const storage = await openStorage(ref);
try {
  await runJob(storage, jobId);
} finally {
  await storage.close();
}
