import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';
import type { JobEvent, JobView } from './api.ts';
import { LineChart } from './chart.tsx';
import { lossCurve } from './loss-store.ts';

/**
 * The caller's jobs of every model they are registered for (`GET /api/v1/jobs`), polled while any
 * is open: status, progress, the service's event log, cancel, and per-epoch charts. The service
 * records each epoch's wall time (`figures.epochMs`); the training loss is known only to the
 * trusted side, so it is charted when this browser drove the job (the Train page keeps it here).
 */

const OPEN = new Set(['queued', 'running', 'awaiting_refresh']);
/** Poll period while a job is open, and while none is (a job may start from the CLI meanwhile). */
const POLL_OPEN_MS = 1000;
const POLL_IDLE_MS = 5000;

const message = (e: unknown): string => (e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e));
const time = (t: number): string => new Date(t).toISOString().slice(11, 19);

export function Jobs() {
  const [rows, setRows] = useState<readonly { model: string; job: JobView }[] | undefined>(undefined);
  const [error, setError] = useState('');
  const [open, setOpen] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async (): Promise<void> => {
      let anyOpen = false;
      try {
        const models = await api.jobs();
        const next = models.flatMap((m) => m.jobs.map((job) => ({ model: `${m.name}/${m.version}`, job }))).sort((a, b) => b.job.createdAt - a.job.createdAt);
        anyOpen = next.some((r) => OPEN.has(r.job.status));
        if (!stop) setRows(next);
      } catch (e) {
        if (!stop) setError(message(e));
      }
      if (!stop) timer = setTimeout(() => void poll(), anyOpen ? POLL_OPEN_MS : POLL_IDLE_MS);
    };
    void poll();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [tick]);

  const cancel = async (model: string, id: string): Promise<void> => {
    setError('');
    try {
      await api.cancelJob(model, id);
      setTick((t) => t + 1);
    } catch (e) {
      setError(message(e));
    }
  };

  return (
    <section data-testid="jobs">
      <h1>Jobs</h1>
      <p>Your fit and inference jobs on every model you are registered for, newest first; open jobs refresh every second. The log and the per-epoch times are the service's; a loss curve appears for jobs this browser trained (only the key holder can compute it).</p>
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
      {rows === undefined ? <p>Loading…</p> : rows.length === 0 ? <p data-testid="no-jobs">No jobs yet: train or run an encrypted inference from the Models page.</p> : null}
      {rows !== undefined && rows.length > 0 && (
        <table>
          <thead>
            <tr><th>Job</th><th>Model</th><th>Kind</th><th>Status</th><th>Progress</th><th>Started</th><th /></tr>
          </thead>
          <tbody>
            {rows.map(({ model, job }) => (
              <JobRow key={job.jobId} model={model} job={job} expanded={open === job.jobId} onToggle={() => setOpen(open === job.jobId ? undefined : job.jobId)} onCancel={() => void cancel(model, job.jobId)} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function JobRow(props: { model: string; job: JobView; expanded: boolean; onToggle: () => void; onCancel: () => void }) {
  const { job } = props;
  const log = Array.isArray(job.figures['log']) ? (job.figures['log'] as JobEvent[]) : [];
  const dropped = typeof job.figures['logDropped'] === 'number' ? job.figures['logDropped'] : 0;
  const epochMs = Array.isArray(job.figures['epochMs']) ? (job.figures['epochMs'] as number[]) : [];
  const loss = lossCurve(job.jobId);
  const pct = Math.round(job.progress * 100);
  return (
    <>
      <tr data-job-id={job.jobId} data-kind={job.kind} data-status={job.status}>
        <td><button type="button" class="link" onClick={props.onToggle} aria-expanded={props.expanded}><code>{job.jobId.slice(0, 12)}</code></button></td>
        <td>{props.model}</td>
        <td>{job.kind}</td>
        <td data-testid="job-status">{job.status.replace('_', ' ')}{job.error !== null && job.status !== 'cancelled' ? `: ${job.error.code}` : ''}</td>
        <td><progress max={100} value={pct} data-testid="job-progress" data-progress={String(job.progress)} /> {pct}%</td>
        <td>{time(job.createdAt)}</td>
        <td>{OPEN.has(job.status) && <button type="button" onClick={props.onCancel}>Cancel</button>}</td>
      </tr>
      {props.expanded && (
        <tr class="detail" data-detail-of={job.jobId}>
          <td colSpan={7}>
            <div class="charts">
              {epochMs.length > 0 && <LineChart testId="chart-epoch-time" title="Seconds per epoch (the service's clock, refresh waits included)" xLabel="epoch" series={[{ name: 'seconds', values: epochMs.map((m) => m / 1000) }]} />}
              {loss !== undefined && <LineChart testId="chart-loss" title="Training loss after each epoch (computed in this browser from the decrypted weights)" xLabel="epoch" fromZero={false} series={[{ name: 'log loss', values: loss }]} />}
            </div>
            {job.error !== null && <p class="error">{job.error.message} ({job.error.code})</p>}
            <pre data-testid="job-log">
              {dropped > 0 ? `… ${dropped} earlier event(s) dropped\n` : ''}
              {log.map((e) => `${time(e.t)}  ${e.event.padEnd(16)} ${e.message}`).join('\n')}
            </pre>
          </td>
        </tr>
      )}
    </>
  );
}
