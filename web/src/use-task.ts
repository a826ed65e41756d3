import { useState } from 'preact/hooks';
import { ApiError } from './api.ts';

/** An error as the pages show it: the service's message with its code (and parameter), or the error's message. */
export const errorMessage = (e: unknown): string => (e instanceof ApiError ? `${e.message} (${e.code}${e.param === undefined ? '' : `, ${e.param}`})` : e instanceof Error ? e.message : String(e));

/** What {@link useTask} gives a page. */
export interface Task {
  /** True while a task runs (the page disables its buttons). */
  readonly busy: boolean;
  /** The last finished task's result line, or the running task's own progress line. */
  readonly status: string;
  /** The last task's error ('' when it succeeded or none ran). */
  readonly error: string;
  readonly setStatus: (s: string) => void;
  readonly setError: (s: string) => void;
  /** Runs `f`: busy while it runs, its result as the status, or its error (and no status) if it throws. */
  readonly run: (f: () => Promise<string>) => Promise<void>;
}

/**
 * The busy / status / error state of a page whose buttons start one task at a time.
 *
 * Invariant: `busy` is true exactly while a `run` is pending; after it settles either `status`
 * holds the task's result and `error` is '', or `error` holds its message and `status` is ''.
 *
 * @example
 * ```ts
 * const { busy, status, error, run } = useTask();
 * const go = (): void => void run(async () => `uploaded ${await upload()} bytes`);
 * ```
 */
export function useTask(): Task {
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');
  const run = async (f: () => Promise<string>): Promise<void> => {
    setBusy(true);
    setError('');
    try {
      setStatus(await f());
    } catch (e) {
      setError(errorMessage(e));
      setStatus('');
    } finally {
      setBusy(false);
    }
  };
  return { busy, status, error, setStatus, setError, run };
}
