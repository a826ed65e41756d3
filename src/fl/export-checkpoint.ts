import { join } from 'node:path';
import { CipherMLError } from '../core/errors.ts';
import { readFileTyped } from '../core/io.ts';
import { modelByName, type ModelSpec } from '../ml/nn/models.ts';
import type { NamedTensor } from './protocol.ts';

/**
 * Reading the final global model of a run folder: `checkpoint.json` (written by the server after
 * every round: tensors as base64 little-endian float64) and `app.json` (written by
 * `cipherml fl nn-server`: which model the tensors belong to).
 */

/** The model of a run folder. */
export interface RunModel {
  readonly spec: ModelSpec;
  readonly tensors: readonly NamedTensor[];
  readonly round: number;
}

function corrupt(message: string, param: string): CipherMLError {
  return new CipherMLError('CIPHERML_E_FORMAT_CORRUPT', message, { param });
}

/**
 * Reads the global model of `runDir`; `model` names the architecture when the folder has no
 * app.json. An encrypted checkpoint (key holder "clients") is refused: the server never had the
 * plaintext model.
 *
 * @example
 * ```ts
 * const { spec, tensors } = await readRunModel('runs/fl-mnist');
 * ```
 */
export async function readRunModel(runDir: string, model?: string): Promise<RunModel> {
  const path = join(runDir, 'checkpoint.json');
  let ck: { round?: unknown; model?: { kind?: unknown; tensors?: { name: string; shape: number[]; values: string }[] } };
  try {
    ck = JSON.parse(new TextDecoder().decode(await readFileTyped(path, '--checkpoint'))) as typeof ck;
  } catch (e) {
    if (e instanceof CipherMLError) throw e;
    throw corrupt(`${path} is not valid JSON (${(e as Error).message})`, '--checkpoint');
  }
  if (ck.model?.kind === 'encrypted') {
    throw new CipherMLError('CIPHERML_E_FORBIDDEN', `${path} holds an encrypted global model (key holder "clients"): only a worker holding the key can export it`, { param: '--checkpoint' });
  }
  if (ck.model?.kind !== 'plain' || !Array.isArray(ck.model.tensors)) throw corrupt(`${path} has no plaintext model`, '--checkpoint');
  let name = model;
  if (name === undefined) {
    try {
      name = (JSON.parse(new TextDecoder().decode(await readFileTyped(join(runDir, 'app.json'), '--checkpoint'))) as { model?: string }).model;
    } catch (e) {
      throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `${runDir} has no readable app.json naming the model (${(e as Error).message}); pass --model`, { param: '--model' });
    }
  }
  const spec = modelByName(name ?? '', '--model');
  const tensors = ck.model.tensors.map((t) => {
    const b = Buffer.from(t.values, 'base64');
    if (b.length % 8 !== 0) throw corrupt(`tensor ${t.name} in ${path} is not a whole number of float64 values`, '--checkpoint');
    const values = new Float64Array(b.length / 8);
    for (let i = 0; i < values.length; i++) values[i] = b.readDoubleLE(i * 8);
    return { name: t.name, shape: t.shape, values };
  });
  return { spec, tensors, round: typeof ck.round === 'number' ? ck.round : 0 };
}
