import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.ts';
import { errorMessage, useTask } from './use-task.ts';
import { loadRecord, openSecretKey, saveRecord, sealSecretKey } from './keystore.ts';
import type { KeyRecord } from './keystore.ts';

import type * as InferHe from './infer-he.ts';

type He = typeof InferHe;
type Ctx = Awaited<ReturnType<He['openInferenceKeys']>>;
type KeyParams = InferHe.KeyParams;
type Tensor = InferHe.Tensor;

/**
 * Internal test hook, as on the Train page: with `window.__cipherml_defences = { encryptUploads: false }`
 * the page posts the input's .npy bytes instead of their encryption, so that the browser test's
 * request-body scan is shown catching plaintext. Nothing in the app sets it.
 */
const encryptUploads = (): boolean => (globalThis as { __cipherml_defences?: { encryptUploads?: boolean } }).__cipherml_defences?.encryptUploads !== false;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let loading: Promise<He> | undefined;
const he = (): Promise<He> => (loading ??= import('./infer-he.ts'));
const argmax = (a: ArrayLike<number>): number => {
  let k = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[k]!) k = i;
  return k;
};
/** The key store's model label of inference keys (the Train page's keys of the same model are another record). */
const keyLabel = (model: string): string => `${model}#inference`;
const shaKey = (user: string, model: string, fingerprint: string): string => `cipherml-infer-keys|${user}|${model}|${fingerprint}`;
async function sha256Hex(b: Uint8Array): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(b))), (x) => x.toString(16).padStart(2, '0')).join('');
}

/** A drawn or uploaded image as MNIST pixels: 28 × 28, row-major, 0 (background) … 1 (ink). */
const SIDE = 28;
const SCALE = 10;

/**
 * Encrypted inference on one model with this browser as the trusted side: keys for the model's
 * published keyparams (made here, sealed under the passphrase), evaluation keys uploaded once,
 * the input (.npy, or a drawn or uploaded 28 × 28 image for MNIST-shaped models) encrypted here,
 * the job awaited, the output decrypted here.
 */
export function Infer(props: { user: string; model: string }) {
  const inf = api.inference(props.model);
  const [kp, setKp] = useState<KeyParams | undefined>(undefined);
  const [record, setRecord] = useState<KeyRecord | undefined>(undefined);
  const [unlocked, setUnlocked] = useState(false);
  const ctx = useRef<Ctx | undefined>(undefined);
  const [passphrase, setPassphrase] = useState('');
  const { busy, status, error, setStatus, setError, run } = useTask();
  const [keysInfo, setKeysInfo] = useState<{ keygenMs?: number; uploadedBytes?: number; reused: boolean } | undefined>(undefined);
  const [result, setResult] = useState<{ jobId: string; output: Tensor; argmax: number[]; encryptMs: number; serviceMs: number; decryptMs: number; inputBytes: number; packing: string; warning: string } | undefined>(undefined);
  const npyFile = useRef<HTMLInputElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);

  useEffect(() => {
    void (async () => {
      try {
        const pub = await inf.published();
        if (pub.inference === null) throw new Error(`${props.model} is not deployed for encrypted inference (its owner runs cipherml gateway deploy)`);
        await inf.register();
        setKp(await inf.keyParams<KeyParams>());
        setRecord(await loadRecord(props.user, keyLabel(props.model)));
      } catch (e) {
        setError(errorMessage(e));
      }
    })();
    return () => {
      ctx.current?.delete();
      ctx.current = undefined;
    };
  }, [props.user, props.model]);
  useEffect(() => clear(), [kp]);

  const need = (): { c: Ctx; k: KeyParams } => {
    if (ctx.current === undefined || kp === undefined) throw new Error('unlock or generate the keys first');
    return { c: ctx.current, k: kp };
  };

  const generate = (e: Event): void => {
    e.preventDefault();
    void run(async () => {
      if (kp === undefined) throw new Error('the keyparams are not loaded');
      setStatus('loading SEAL and generating the inference keys…');
      const h = await he();
      const keys = await h.makeInferenceKeys(kp);
      try {
        setStatus(`uploading the evaluation keys (${(keys.publicKeys.length / 2 ** 20).toFixed(1)} MiB)…`);
        await inf.putKeys(keys.publicKeys);
        localStorage.setItem(shaKey(props.user, props.model, keys.fingerprint), await sha256Hex(keys.publicKeys));
        const rec = await sealSecretKey(props.user, keyLabel(props.model), keys.fingerprint, passphrase, keys.secretKey);
        await saveRecord(rec);
        ctx.current?.delete();
        ctx.current = keys.ctx;
        setRecord(rec);
      } catch (err) {
        keys.ctx.delete();
        throw err;
      }
      setUnlocked(true);
      setPassphrase('');
      setKeysInfo({ keygenMs: keys.keygenMs, uploadedBytes: keys.publicKeys.length, reused: false });
      return 'inference keys generated; evaluation keys uploaded; the secret key is sealed in this browser';
    });
  };
  const unlock = (e: Event): void => {
    e.preventDefault();
    void run(async () => {
      if (record === undefined || kp === undefined) throw new Error('no key record');
      setStatus('unlocking…');
      const sk = await openSecretKey(record, passphrase);
      const c = await (await he()).openInferenceKeys(sk, record.fingerprint, kp);
      sk.fill(0);
      // The evaluation keys are uploaded once: reused when the service holds the ones made with this key.
      const stored = await inf.storedKeys();
      if (stored === undefined || stored.sha256 !== localStorage.getItem(shaKey(props.user, props.model, record.fingerprint))) {
        c.delete();
        throw new Error('the service holds no evaluation keys of this key set (they were replaced, e.g. by the CLI gateway): make new keys');
      }
      ctx.current?.delete();
      ctx.current = c;
      setUnlocked(true);
      setPassphrase('');
      setKeysInfo({ reused: true });
      return 'unlocked: the secret key is in this page; the evaluation keys on the service are this key set\'s';
    });
  };
  const forget = (): void => {
    ctx.current?.delete();
    ctx.current = undefined;
    setUnlocked(false);
    setRecord(undefined);
  };

  const infer = (input: () => Promise<{ tensor: Tensor; raw?: Uint8Array }>): void => {
    void run(async () => {
      const { c, k } = need();
      const h = await he();
      const { tensor, raw } = await input();
      let body: Uint8Array;
      let enc = { packing: 'none', encryptMs: 0, samples: 1 };
      if (!encryptUploads() && raw !== undefined) {
        body = raw;
      } else {
        setStatus('encrypting…');
        await sleep(0);
        const e = h.encryptInput(c, tensor, k);
        body = e.bytes;
        enc = e;
      }
      const t0 = performance.now();
      const { jobId } = await inf.infer(body);
      for (;;) {
        const j = await inf.job(jobId);
        setStatus(`job ${jobId}: ${j.status}`);
        if (j.status === 'succeeded') break;
        if (j.status === 'failed' || j.status === 'cancelled') throw new Error(`inference job ${jobId} ${j.status}: ${j.error?.message ?? ''} (${j.error?.code ?? ''})`);
        await sleep(300);
      }
      const out = await inf.output(jobId);
      const serviceMs = performance.now() - t0;
      const d = h.decryptResult(c, out, k);
      const per = d.output.dims.slice(1).reduce((a, x) => a * x, 1);
      const maxes = Array.from({ length: d.output.dims[0] ?? 1 }, (_, s) => argmax(d.output.data.subarray(s * per, (s + 1) * per)));
      const warning = d.rangeWarning === undefined ? '' : `${d.rangeWarning.count} value(s) far outside the calibrated output range [${d.rangeWarning.calibrated.join(', ')}]: not trustworthy`;
      setResult({ jobId, output: d.output, argmax: maxes, encryptMs: enc.encryptMs, serviceMs, decryptMs: d.decryptMs, inputBytes: body.length, packing: enc.packing, warning });
      return `inferred ${maxes.length} sample(s); decrypted here`;
    });
  };
  const fromNpy = async (): Promise<{ tensor: Tensor; raw: Uint8Array }> => {
    const f = npyFile.current?.files?.[0];
    if (f === undefined) throw new Error('choose a .npy file first');
    const raw = new Uint8Array(await f.arrayBuffer());
    return { tensor: (await he()).parseNpy(raw, f.name), raw };
  };
  const fromCanvas = async (): Promise<{ tensor: Tensor }> => {
    const px = pixels();
    if (kp === undefined) throw new Error('the keyparams are not loaded');
    return { tensor: { dims: kp.inputDims.slice(1).map((d) => d ?? 1), data: px } };
  };

  // ---- the 28 × 28 drawing (or an uploaded image drawn into it)
  function clear(): void {
    const g = canvas.current?.getContext('2d');
    if (g === null || g === undefined) return;
    g.fillStyle = '#000';
    g.fillRect(0, 0, SIDE * SCALE, SIDE * SCALE);
  }
  const stroke = (e: PointerEvent): void => {
    if (!drawing.current) return;
    const g = canvas.current?.getContext('2d');
    const r = canvas.current?.getBoundingClientRect();
    if (g === null || g === undefined || r === undefined) return;
    g.fillStyle = '#fff';
    g.beginPath();
    // The canvas is drawn at a CSS size other than its pixel size: pointer positions are scaled.
    g.arc(((e.clientX - r.left) * SIDE * SCALE) / r.width, ((e.clientY - r.top) * SIDE * SCALE) / r.height, SCALE * 1.2, 0, 2 * Math.PI);
    g.fill();
  };
  /** The canvas averaged down to 28 × 28 (ink = 1). */
  function pixels(): Float64Array {
    const g = canvas.current?.getContext('2d');
    if (g === null || g === undefined) throw new Error('no drawing');
    const img = g.getImageData(0, 0, SIDE * SCALE, SIDE * SCALE).data;
    const out = new Float64Array(SIDE * SIDE);
    for (let y = 0; y < SIDE * SCALE; y++) for (let x = 0; x < SIDE * SCALE; x++) out[Math.floor(y / SCALE) * SIDE + Math.floor(x / SCALE)]! += img[(y * SIDE * SCALE + x) * 4]! / 255 / (SCALE * SCALE);
    return out;
  }
  const loadImage = async (f: File): Promise<void> => {
    const bmp = await createImageBitmap(f);
    const g = canvas.current?.getContext('2d');
    if (g === null || g === undefined) return;
    g.drawImage(bmp, 0, 0, SIDE * SCALE, SIDE * SCALE);
    // MNIST digits are light ink on a dark ground: a light image is inverted.
    const d = g.getImageData(0, 0, SIDE * SCALE, SIDE * SCALE);
    let mean = 0;
    for (let i = 0; i < d.data.length; i += 4) {
      const v = 0.299 * d.data[i]! + 0.587 * d.data[i + 1]! + 0.114 * d.data[i + 2]!;
      d.data[i] = d.data[i + 1] = d.data[i + 2] = v;
      mean += v / (d.data.length / 4);
    }
    if (mean > 127) for (let i = 0; i < d.data.length; i += 4) d.data[i] = d.data[i + 1] = d.data[i + 2] = 255 - d.data[i]!;
    g.putImageData(d, 0, 0);
  };

  const mnistShaped = kp !== undefined && kp.inputDims.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1) === SIDE * SIDE;
  const ready = unlocked && kp !== undefined;
  return (
    <section data-testid="infer">
      <h1>Encrypted inference on {props.model}</h1>
      <p>
        This browser is the trusted side: it makes the CKKS keys for the model's published keyparams, uploads the evaluation keys once, encrypts your input and decrypts the output. The service
        evaluates the calibrated model on ciphertexts only; it never receives the input, the output or the secret key.
      </p>
      {kp !== undefined && (
        <p data-testid="keyparams">
          Keyparams: N = {kp.params.polyModulusDegree}, {kp.params.coeffModulusBits.length} primes, depth {kp.depth}, {kp.packing} packing, input [{kp.inputDims.map((d) => d ?? 'N').join(', ')}], evaluation keys ≈{' '}
          {(kp.keys.publicKeyBytes / 2 ** 20).toFixed(0)} MiB.
        </p>
      )}

      <h2>1. Keys</h2>
      {record === undefined ? (
        <form class="row" onSubmit={generate} data-testid="infer-keygen-form">
          <label>
            Passphrase (at least 12 characters)
            <input name="infer-passphrase" type="password" autocomplete="new-password" required minLength={12} value={passphrase} onInput={(e) => setPassphrase(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy || kp === undefined}>Generate keys</button>
        </form>
      ) : (
        <>
          <p>
            Key set <code data-testid="infer-fingerprint">{record.fingerprint}</code>{unlocked ? ', unlocked' : ''}.
            {keysInfo?.keygenMs !== undefined && <span data-testid="infer-keygen-ms" data-ms={keysInfo.keygenMs.toFixed(0)} data-bytes={String(keysInfo.uploadedBytes ?? 0)}> Key generation took {(keysInfo.keygenMs / 1000).toFixed(1)} s; {((keysInfo.uploadedBytes ?? 0) / 2 ** 20).toFixed(1)} MiB of evaluation keys uploaded.</span>}
            {keysInfo?.reused === true && <span data-testid="infer-keys-reused"> The service's evaluation keys are this key set's: nothing uploaded.</span>}
          </p>
          {!unlocked && (
            <form class="row" onSubmit={unlock} data-testid="infer-unlock-form">
              <label>
                Passphrase
                <input name="infer-unlock-passphrase" type="password" autocomplete="current-password" required value={passphrase} onInput={(e) => setPassphrase(e.currentTarget.value)} />
              </label>
              <button type="submit" disabled={busy}>Unlock</button>
              <button type="button" disabled={busy} onClick={forget}>Make new keys</button>
            </form>
          )}
        </>
      )}

      <h2>2. Input</h2>
      <div class="row">
        <label>
          Input .npy (one sample, or a batch with a leading axis)
          <input name="infer-npy" type="file" accept=".npy" ref={npyFile} />
        </label>
        <button type="button" disabled={busy || !ready} onClick={() => infer(fromNpy)}>Encrypt the .npy and infer</button>
      </div>
      {mnistShaped && (
        <div class="row">
          <canvas
            ref={canvas}
            width={SIDE * SCALE}
            height={SIDE * SCALE}
            class="digit"
            data-testid="digit-canvas"
            onPointerDown={(e) => {
              drawing.current = true;
              stroke(e);
            }}
            onPointerMove={stroke}
            onPointerUp={() => (drawing.current = false)}
            onPointerLeave={() => (drawing.current = false)}
          />
          <div>
            <p>Draw a digit (light on dark), or load an image: it is averaged down to 28 × 28.</p>
            <input name="infer-image" type="file" accept="image/*" onChange={(e) => void (e.currentTarget.files?.[0] === undefined ? undefined : loadImage(e.currentTarget.files[0]))} />
            <button type="button" onClick={clear}>Clear</button>{' '}
            <button type="button" disabled={busy || !ready} onClick={() => infer(fromCanvas)}>Encrypt the drawing and infer</button>
          </div>
        </div>
      )}

      {result !== undefined && (
        <div data-testid="infer-result" data-output={JSON.stringify(Array.from(result.output.data))} data-argmax={JSON.stringify(result.argmax)} data-encrypt-ms={result.encryptMs.toFixed(0)} data-service-ms={result.serviceMs.toFixed(0)} data-decrypt-ms={result.decryptMs.toFixed(0)} data-input-bytes={String(result.inputBytes)}>
          <h2>Result (decrypted in this browser)</h2>
          <p>
            Predicted class{result.argmax.length > 1 ? 'es' : ''}: <strong data-testid="infer-argmax">{result.argmax.join(', ')}</strong> (argmax of the decrypted output, shape [{result.output.dims.join(', ')}]).
          </p>
          <p>
            Job <code>{result.jobId}</code>; {result.packing} packing; encrypted in {(result.encryptMs / 1000).toFixed(2)} s ({(result.inputBytes / 2 ** 20).toFixed(1)} MiB uploaded); service and transfer {(result.serviceMs / 1000).toFixed(1)} s; decrypted in {(result.decryptMs / 1000).toFixed(2)} s.
          </p>
          <pre>{Array.from(result.output.data.subarray(0, Math.min(result.output.data.length, 20)), (v) => v.toFixed(4)).join('  ')}</pre>
          {result.warning !== '' && <p class="error">{result.warning}</p>}
        </div>
      )}
      {status !== '' && <p data-testid="infer-status">{status}</p>}
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
    </section>
  );
}
