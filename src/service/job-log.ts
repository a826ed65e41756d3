import type { JobPatch, JobRow, Storage } from './storage/index.ts';

/**
 * The per-job event log (issue 17, the console's Jobs page): a bounded list of what happened to a
 * job and when, kept in the job row's figures (`figures.log`, `figures.logDropped`), so every
 * storage backend keeps it without a schema change and `GET …/jobs/{jobId}` shows it.
 *
 * Invariant: a job's log never holds more than {@link JOB_LOG_MAX} events; older ones are dropped
 * first and counted in `logDropped`. Events carry no user data: a kind, a time and a line the
 * service wrote (epoch numbers, durations, error codes).
 */

/** Most events one job keeps. */
export const JOB_LOG_MAX = 64;
/** Longest event line kept (characters; longer ones are cut). */
export const JOB_LOG_LINE_MAX = 240;

/** One event of a job's log. */
export interface JobEvent {
  /** Unix time, milliseconds. */
  readonly t: number;
  readonly event: string;
  readonly message: string;
}

/** The events recorded in a job's figures (none for a job from before the log existed). */
export function jobEvents(figures: Readonly<Record<string, unknown>>): JobEvent[] {
  const log = figures['log'];
  return Array.isArray(log) ? (log as JobEvent[]) : [];
}

/**
 * The figures patch that appends one event to a job's log, dropping the oldest beyond
 * {@link JOB_LOG_MAX}.
 *
 * @example
 * ```ts
 * await storage.updateJob(job.id, { status: 'running', figures: { ...logPatch(job.figures, 'started', 'training started') } });
 * ```
 */
export function logPatch(figures: Readonly<Record<string, unknown>>, event: string, message: string, now: number = Date.now()): { log: JobEvent[]; logDropped: number } {
  const log = [...jobEvents(figures), { t: now, event, message: message.length > JOB_LOG_LINE_MAX ? `${message.slice(0, JOB_LOG_LINE_MAX - 1)}…` : message }];
  const over = Math.max(0, log.length - JOB_LOG_MAX);
  const dropped = (typeof figures['logDropped'] === 'number' ? figures['logDropped'] : 0) + over;
  return { log: log.slice(over), logDropped: dropped };
}

/**
 * Applies `patch` to the job and appends one event, in one update (a job already final keeps its
 * row unchanged, as {@link Storage.updateJob} does). Returns the stored row.
 *
 * @example
 * ```ts
 * await logJob(storage, jobId, 'queued', 'fit job queued: 3 epochs');
 * ```
 */
export async function logJob(storage: Storage, jobId: string, event: string, message: string, patch: JobPatch = {}): Promise<JobRow> {
  const row = await storage.getJob(jobId);
  const figures = row?.figures ?? {};
  return storage.updateJob(jobId, { ...patch, figures: { ...patch.figures, ...logPatch(figures, event, message) } });
}
