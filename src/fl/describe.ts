import type { RunSummary, ServerEvent } from './server.ts';
import type { WorkerEvent } from './worker.ts';

/** One-line human descriptions of runtime events, shared by the CLI and the demos. */

const fmt = (x: number | null | undefined, d = 4) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));

/** One human line per server event. */
export function describeServerEvent(e: ServerEvent): string {
  switch (e.type) {
    case 'listening':
      return `server: listening on ${e.address} (strategy ${e.strategy}, key holder ${e.keyHolder})`;
    case 'resumed':
      return `server: resumed from checkpoint after round ${e.round}`;
    case 'joined':
      return `server: worker ${e.workerId} joined with ${e.numExamples} examples (${e.workers} connected)`;
    case 'dropped':
      return `server: worker ${e.workerId} dropped (${e.reason})`;
    case 'rejected':
      return `server: rejected input from worker ${e.workerId}: ${e.message}`;
    case 'round-start':
      return `round ${e.round}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}: fit on ${e.selected.join(', ')}`;
    case 'round-retry':
      return `round ${e.round}: retrying — ${e.reason}`;
    case 'stage':
      return `round ${e.round}: secure aggregation ${e.stage}: ${e.answered} of ${e.expected} clients answered (${e.ms.toFixed(0)} ms)`;
    case 'round-end': {
      const r = e.record;
      const sa = r.secagg as { survivors?: number; dropped?: readonly string[]; clipped?: number; threshold?: unknown } | null;
      // Key-holder "threshold" reports its holders under `threshold`; secure aggregation reports its share threshold (a number) there.
      const th = typeof sa?.threshold === 'object' && sa.threshold !== null && 'used' in sa.threshold ? (sa.threshold as { used: readonly number[]; rejected: readonly number[]; failed: readonly { holder: string }[] }) : undefined;
      const secagg =
        sa === null
          ? ''
          : th !== undefined
            ? `, decrypted with the shares of key holders ${th.used.join(', ')}${th.rejected.length > 0 ? ` (invalid shares from holder ${th.rejected.join(', ')})` : ''}${th.failed.length > 0 ? ` (no answer from ${th.failed.map((f) => f.holder).join(', ')})` : ''}`
            : `, secure sum of ${String(sa.survivors)} survivors (dropped: ${sa.dropped?.length ? sa.dropped.join(', ') : 'none'}; ${String(sa.clipped)} values clipped)`;
      return `round ${r.round}: ${r.fitResults} updates (${r.fitFailures} failed)${secagg}, ${(r.bytesIn / 1024).toFixed(1)} KiB in, train loss ${fmt(r.trainLoss)}, validation loss ${fmt(r.serverLoss)} accuracy ${fmt(r.serverAccuracy)}, federated accuracy ${fmt(r.federatedAccuracy)} (${r.durationMs.toFixed(0)} ms)`;
    }
    case 'finished':
      return `server: finished ${e.summary.rounds} rounds; history in ${e.summary.runDir}/history.json, plot in ${e.summary.runDir}/history.svg`;
  }
}

export function describeWorkerEvent(id: string, e: WorkerEvent): string {
  switch (e.type) {
    case 'joined':
      return `worker ${id}: joined (${e.strategy}, key holder ${e.keyHolder}), next round ${e.nextRound} of ${e.numRounds}`;
    case 'fit':
      return `worker ${id}: round ${e.round} trained, loss ${fmt(e.loss)}, sent ${(e.bytesOut / 1024).toFixed(1)} KiB in ${e.ms.toFixed(0)} ms`;
    case 'secagg':
      return `worker ${id}: round ${e.round} secure aggregation ${e.stage}, sent ${(e.bytesOut / 1024).toFixed(1)} KiB${e.clipped === undefined ? '' : `; ${e.clipped} values clipped to the clipping range`}`;
    case 'evaluate':
      return `worker ${id}: round ${e.round} local loss ${fmt(e.loss)} accuracy ${fmt(e.accuracy)}`;
    case 'retry':
      return `worker ${id}: server unreachable, retrying in ${e.delayMs} ms (${e.reason})`;
    case 'task-failed':
      return `worker ${id}: round ${e.round} task failed: ${e.message}`;
    case 'finished':
      return `worker ${id}: finished (${e.reason})`;
  }
}

/** The compact summary printed last (and as the JSON last line). */
export function summaryJson(s: RunSummary): Record<string, unknown> {
  const f = s.final;
  return {
    strategy: s.strategy,
    keyHolder: s.keyHolder,
    rounds: s.rounds,
    accuracy: f?.serverAccuracy ?? f?.federatedAccuracy ?? null,
    loss: f?.serverLoss ?? f?.federatedLoss ?? null,
    auc: f?.serverAuc ?? null,
    evaluatedOn: f?.serverAccuracy !== null && f?.serverAccuracy !== undefined ? 'validate-set' : 'workers',
    runDir: s.runDir,
    runId: s.runId,
  };
}

