/**
 * Per-epoch training loss of the jobs this browser drove, kept in localStorage
 * (`cipherml-loss|<jobId>`): the loss is computed on the plaintext training set with the decrypted
 * weights, so it exists only on the trusted side and is never sent to the service.
 */
const KEY = 'cipherml-loss|';
/** Most jobs whose curves are kept (oldest dropped first). */
const MAX_JOBS = 50;

export function recordLoss(jobId: string, epoch: number, loss: number): void {
  const curve = lossCurve(jobId) ?? [];
  curve[epoch - 1] = loss;
  try {
    localStorage.setItem(KEY + jobId, JSON.stringify(Array.from(curve, (v) => v ?? null)));
    const keys = Object.keys(localStorage).filter((k) => k.startsWith(KEY));
    for (const k of keys.slice(0, Math.max(0, keys.length - MAX_JOBS))) localStorage.removeItem(k);
  } catch {
    // Storage full or disabled: the curve is a convenience, training goes on.
  }
}

export function lossCurve(jobId: string): number[] | undefined {
  const raw = localStorage.getItem(KEY + jobId);
  if (raw === null) return undefined;
  const v = JSON.parse(raw) as unknown;
  return Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? x : NaN)) : undefined;
}
