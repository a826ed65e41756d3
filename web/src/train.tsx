import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';
import { errorMessage, useTask } from './use-task.ts';
import type { JobState } from './api.ts';
import { loadRecord, openSecretKey, recordFromService, saveRecord, sealSecretKey, serviceBytes } from './keystore.ts';
import type { KeyRecord } from './keystore.ts';
import { LineChart } from './chart.tsx';
import { lossCurve, recordLoss } from './loss-store.ts';

import type * as HeModule from './he.ts';

type He = typeof HeModule;
type Ctx = Awaited<ReturnType<He['openKeys']>>;
type Dataset = ReturnType<He['parseDataset']>;

/**
 * Internal test hook (the browser's counterpart of src/core/defences.ts): with
 * `window.__cipherml_defences = { encryptUploads: false }` the page uploads the training CSV as
 * plain text instead of its encryption, so that the browser test can show its request-body scan
 * catching plaintext. Nothing in the app sets it.
 */
const encryptUploads = (): boolean => (globalThis as { __cipherml_defences?: { encryptUploads?: boolean } }).__cipherml_defences?.encryptUploads !== false;

const mb = (n: number): string => (n / 2 ** 20).toFixed(1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let loading: Promise<He> | undefined;
const he = (): Promise<He> => (loading ??= import('./he.ts'));

/**
 * One model, this browser as the trusted gateway: keys (made here or unsealed with the
 * passphrase), the training CSV encrypted here, the fit job driven from here (its refreshes are
 * answered here), the trained weights and predictions decrypted here.
 */
export function Train(props: { user: string; model: string }) {
  const api1 = api.model(props.model);
  const [record, setRecord] = useState<KeyRecord | undefined>(undefined);
  const [unlocked, setUnlocked] = useState<string | undefined>(undefined);
  const ctx = useRef<Ctx | undefined>(undefined);
  const [passphrase, setPassphrase] = useState('');
  const [backup, setBackup] = useState(false);
  const { busy, status, error, setStatus, setError, run } = useTask();
  const [keygenMs, setKeygenMs] = useState<number | undefined>(undefined);
  const [uploaded, setUploaded] = useState<{ rows: number; features: number; encryptMs: number; bytes: number } | undefined>(undefined);
  const [batch, setBatch] = useState('');
  const [epochs, setEpochs] = useState(3);
  const [rate, setRate] = useState(0.1);
  const [job, setJob] = useState<{ id: string; state: JobState; answered: number } | undefined>(undefined);
  const [trained, setTrained] = useState<{ coef: number[]; intercept: number } | undefined>(undefined);
  const [predicted, setPredicted] = useState<{ p: number[]; accuracy: number | undefined } | undefined>(undefined);
  const trainSet = useRef<Dataset | undefined>(undefined);
  const trainFile = useRef<HTMLInputElement>(null);
  const predictFile = useRef<HTMLInputElement>(null);

  useEffect(() => {
    loadRecord(props.user, props.model).then(setRecord, (e: unknown) => setError(errorMessage(e)));
    return () => {
      ctx.current?.delete();
      ctx.current = undefined;
    };
  }, [props.user, props.model]);

  const key = (): Ctx => {
    if (ctx.current === undefined) throw new Error('unlock or generate the keys first');
    return ctx.current;
  };
  const readCsv = async (input: HTMLInputElement | null, what: string): Promise<{ text: string; name: string }> => {
    const f = input?.files?.[0];
    if (f === undefined) throw new Error(`choose the ${what} CSV file first`);
    return { text: await f.text(), name: f.name };
  };

  const generate = (e: Event): void => {
    e.preventDefault();
    void run(async () => {
      setStatus('loading SEAL and generating keys…');
      const h = await he();
      const keys = await h.makeKeys();
      try {
        setStatus('registering and uploading the public context…');
        await api1.register();
        await api1.put('context/public', keys.publicContext);
        setStatus('sealing the secret key under your passphrase…');
        const rec = await sealSecretKey(props.user, props.model, keys.fingerprint, passphrase, keys.secretKey);
        await saveRecord(rec);
        if (backup) await api1.put('context/secret', serviceBytes(rec));
        ctx.current?.delete();
        ctx.current = keys.ctx;
        setRecord(rec);
      } catch (err) {
        keys.ctx.delete();
        throw err;
      }
      setUnlocked(keys.fingerprint);
      setKeygenMs(keys.keygenMs);
      setPassphrase('');
      return backup ? 'keys generated; the secret key is sealed in this browser and a sealed copy is on the service' : 'keys generated; the secret key is sealed in this browser';
    });
  };
  const restore = (): void => {
    void run(async () => {
      const rec = recordFromService(await api1.get('context/secret'), props.user, props.model);
      await saveRecord(rec);
      setRecord(rec);
      return 'sealed key record restored from the service; unlock it with your passphrase';
    });
  };
  const unlock = (e: Event): void => {
    e.preventDefault();
    void run(async () => {
      if (record === undefined) throw new Error('no key record');
      setStatus('unlocking…');
      const sk = await openSecretKey(record, passphrase);
      const c = await (await he()).openKeys(sk, record.fingerprint);
      sk.fill(0);
      ctx.current?.delete();
      ctx.current = c;
      setUnlocked(record.fingerprint);
      setPassphrase('');
      return 'unlocked: the secret key is in this page';
    });
  };

  const upload = (): void => {
    void run(async () => {
      const c = key();
      const h = await he();
      const csv = await readCsv(trainFile.current, 'training');
      const ds: Dataset = h.parseDataset(csv.text, csv.name);
      // The profile (requirements) as `gateway fit --requirements` posts it; its batchSize is also
      // the packing's block size, as the CLI gateway encrypts with it.
      const batchSize = batch.trim() === '' ? undefined : Number(batch);
      if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 4096)) throw new Error(`Batch size must be a whole number from 1 to 4096 (or empty for one block of all rows), got ${JSON.stringify(batch)}`);
      await api1.addProfile(batchSize === undefined ? {} : { batchSize });
      if (!encryptUploads()) {
        await api1.put('data/fit', new TextEncoder().encode(csv.text));
        return 'uploaded the CSV in plain text (test hook)';
      }
      setStatus('encrypting…');
      await sleep(0);
      const up = h.encryptFit(c, ds, batchSize);
      await api1.put('model', up.model);
      await api1.put('data/fit', up.data);
      trainSet.current = ds;
      setUploaded({ rows: up.rows, features: up.features, encryptMs: up.encryptMs, bytes: up.model.length + up.data.length });
      setTrained(undefined);
      setPredicted(undefined);
      return `encrypted and uploaded ${up.rows} rows × ${up.features} features and the initial model`;
    });
  };

  const train = (e: Event): void => {
    e.preventDefault();
    void run(async () => {
      const c = key();
      const h = await he();
      if (uploaded === undefined) throw new Error('encrypt and upload a training CSV first');
      const hyper = h.validateHyperParams({ numberOfEpochs: epochs, learningRate: rate, numberOfFeatures: uploaded.features, logisticRegressionActivation: 'sigmoid_poly_3_approximation' });
      const { jobId } = await api1.fit({ ...hyper });
      let answered = 0;
      for (;;) {
        const state = await api1.job(jobId);
        setJob({ id: jobId, state, answered });
        if (state.status === 'succeeded') break;
        if (state.status === 'failed' || state.status === 'cancelled') throw new Error(`job ${jobId} ${state.status}: ${state.error?.message ?? 'unknown'} (${state.error?.code ?? ''})`);
        if (state.status === 'awaiting_refresh') {
          const weights = await api1.refreshWeights(jobId).catch(() => undefined);
          if (weights !== undefined) {
            const r = h.refresh(c, weights);
            // The loss after the epoch the job just finished, on the plaintext training set here.
            const epoch = state.figures['refreshEpoch'];
            if (typeof epoch === 'number' && trainSet.current !== undefined) recordLoss(jobId, epoch, h.logLoss(trainSet.current, r.coef, r.intercept));
            const ok = await api1.answerRefresh(jobId, r.fresh).then(
              () => true,
              // Answered already: the next poll decides.
              (err: unknown) => (err instanceof ApiError && err.code === 'CIPHERML_E_SERVICE_CONFLICT' ? false : Promise.reject(err)),
            );
            if (ok) {
              answered++;
              continue;
            }
          }
        }
        await sleep(250);
      }
      const t = h.openTrained(c, await api1.get('model/trained'));
      if (trainSet.current !== undefined) recordLoss(jobId, epochs, h.logLoss(trainSet.current, t.coef, t.intercept));
      await api1.put('model/trained', t.fresh);
      setTrained({ coef: t.coef, intercept: t.intercept });
      return `trained: ${epochs} epochs, ${answered} refreshes answered in this browser; weights decrypted here`;
    });
  };

  const predict = (): void => {
    void run(async () => {
      const c = key();
      const h = await he();
      const csv = await readCsv(predictFile.current, 'prediction');
      const ds = h.parseDataset(csv.text, csv.name);
      const scores = await api1.predict(ds.featureNames.length, h.encryptPredict(c, ds));
      const p = h.openScores(c, scores);
      const accuracy = p.reduce((a, v, i) => a + ((v >= 0.5 ? 1 : 0) === ds.labels[i] ? 1 : 0), 0) / p.length;
      setPredicted({ p, accuracy });
      return `predicted ${p.length} rows; decrypted here`;
    });
  };

  const ready = unlocked !== undefined;
  return (
    <section data-testid="train">
      <h1>Train {props.model} with encrypted data</h1>
      <p>
        This browser is the trusted side: it makes the CKKS keys, encrypts the model and your CSV, answers the training job's refreshes and decrypts the trained weights and predictions. The
        service only receives the public keys, ciphertexts and the hyper-parameters. The secret key is sealed under your passphrase in this browser (and, if you ask, on the service, which cannot open it).
      </p>

      <h2>1. Keys</h2>
      {record === undefined ? (
        <form class="row" onSubmit={generate} data-testid="keygen-form">
          <label>
            Passphrase (at least 12 characters)
            <input name="passphrase" type="password" autocomplete="new-password" required minLength={12} value={passphrase} onInput={(e) => setPassphrase(e.currentTarget.value)} />
          </label>
          <label class="check">
            <input name="backup" type="checkbox" checked={backup} onChange={(e) => setBackup(e.currentTarget.checked)} />
            Keep a sealed copy on the service
          </label>
          <button type="submit" disabled={busy}>Generate keys</button>
          <button type="button" disabled={busy} onClick={restore}>Restore from the service</button>
        </form>
      ) : (
        <>
          <p>
            Key set <code data-testid="key-fingerprint">{record.fingerprint}</code>, made {new Date(record.createdAt).toISOString().slice(0, 16).replace('T', ' ')} UTC{ready ? ', unlocked' : ''}.
            {keygenMs !== undefined && <span data-testid="keygen-ms" data-ms={keygenMs.toFixed(0)}> Key generation and serialization took {(keygenMs / 1000).toFixed(1)} s.</span>}
          </p>
          {!ready && (
            <form class="row" onSubmit={unlock} data-testid="unlock-form">
              <label>
                Passphrase
                <input name="unlock-passphrase" type="password" autocomplete="current-password" required value={passphrase} onInput={(e) => setPassphrase(e.currentTarget.value)} />
              </label>
              <button type="submit" disabled={busy}>Unlock</button>
            </form>
          )}
        </>
      )}

      <h2>2. Training data</h2>
      <div class="row">
        <label>
          <span>
            Training CSV (header; label column <code>y</code>; an <code>id</code> column is ignored)
          </span>
          <input name="train-csv" type="file" accept=".csv,text/csv" ref={trainFile} />
        </label>
        <label>
          <span>Batch size (profile; empty: all rows in one block)</span>
          <input name="batch-size" type="number" min={1} max={4096} step={1} value={batch} onInput={(e) => setBatch(e.currentTarget.value)} />
        </label>
        <button type="button" disabled={busy || !ready} onClick={upload}>Encrypt and upload</button>
      </div>
      {uploaded !== undefined && (
        <p data-testid="encrypt-result" data-encrypt-ms={uploaded.encryptMs.toFixed(0)} data-bytes={String(uploaded.bytes)} data-rows={String(uploaded.rows)} data-features={String(uploaded.features)}>
          Encrypted {uploaded.rows} rows × {uploaded.features} features and the initial model in {(uploaded.encryptMs / 1000).toFixed(2)} s; uploaded {mb(uploaded.bytes)} MiB of ciphertext.
        </p>
      )}

      <h2>3. Training</h2>
      <form class="row" onSubmit={train}>
        <label>
          Epochs
          <input name="epochs" type="number" min={1} max={100} required value={epochs} onInput={(e) => setEpochs(Number(e.currentTarget.value))} />
        </label>
        <label>
          Learning rate
          <input name="learning-rate" type="number" min={0.001} max={10} step="any" required value={rate} onInput={(e) => setRate(Number(e.currentTarget.value))} />
        </label>
        <button type="submit" disabled={busy || !ready || uploaded === undefined}>Start training</button>
      </form>
      {job !== undefined && (
        <p data-testid="job-status" data-status={job.state.status}>
          Job <code>{job.id}</code>: {job.state.status}, {(job.state.progress * 100).toFixed(0)}%, refreshes {String(job.state.figures['refreshes'] ?? 0)}
        </p>
      )}
      {job !== undefined && lossCurve(job.id) !== undefined && <LineChart testId="train-loss" title="Training loss after each epoch (computed here from the decrypted weights)" xLabel="epoch" fromZero={false} series={[{ name: 'log loss', values: lossCurve(job.id)! }]} />}
      {trained !== undefined && (
        <div data-testid="weights" data-weights={JSON.stringify({ coef_: [trained.coef], intercept_: [trained.intercept] })}>
          <p>Trained weights (decrypted in this browser; <code>model.json</code> shape):</p>
          <pre>{JSON.stringify({ coef_: [trained.coef.map((w) => Number(w.toPrecision(6)))], intercept_: [Number(trained.intercept.toPrecision(6))] })}</pre>
        </div>
      )}

      <h2>4. Encrypted prediction</h2>
      <div class="row">
        <label>
          CSV to predict (same columns)
          <input name="predict-csv" type="file" accept=".csv,text/csv" ref={predictFile} />
        </label>
        <button type="button" disabled={busy || !ready} onClick={predict}>Encrypt and predict</button>
      </div>
      {predicted !== undefined && (
        <div data-testid="predictions" data-probabilities={JSON.stringify(predicted.p)}>
          <p>
            {predicted.p.length} probabilities, decrypted here{predicted.accuracy === undefined ? '' : `; accuracy against the CSV's labels ${(predicted.accuracy * 100).toFixed(1)} %`}. First rows:{' '}
            {predicted.p.slice(0, 8).map((v) => v.toFixed(3)).join(', ')}
          </p>
        </div>
      )}
      {status !== '' && <p data-testid="train-status">{status}</p>}
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
    </section>
  );
}
