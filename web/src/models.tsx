import { useEffect, useRef, useState } from 'preact/hooks';
import { packDeployBundle } from '../../src/inference/deploy-bundle.ts';
import { api } from './api.ts';
import { errorMessage as message } from './use-task.ts';

type Row = { name: string; version: string; url: string };


/**
 * Deployed models: register for one (or unregister) through the REST API with the session; an
 * owner also deploys (for training, and with an ONNX model and calibration inputs for encrypted
 * inference) and undeploys from here, as `cipherml gateway deploy` does.
 */
export function Models(props: { role: 'owner' | 'user' }) {
  const [rows, setRows] = useState<readonly Row[]>([]);
  const [state, setState] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const reload = (): Promise<void> => api.models().then(setRows, (e: unknown) => setError(message(e)));
  useEffect(() => {
    void reload();
  }, []);
  const act = async (key: string, f: () => Promise<string>): Promise<void> => {
    setError('');
    try {
      const label = await f();
      setState((s) => ({ ...s, [key]: label }));
    } catch (e) {
      setError(message(e));
    }
  };
  const owner = props.role === 'owner';
  return (
    <section data-testid="models">
      <h1>Models</h1>
      <p>Models deployed on this service. Register for a model, then Train (logistic regression on your encrypted CSV) or Infer (a deployed ONNX model on your encrypted input): this browser makes the keys, encrypts, and decrypts the results (or use the CLI gateway).</p>
      <table>
        <thead>
          <tr><th>Model</th><th>URL</th><th>Status</th><th /></tr>
        </thead>
        <tbody>
          {rows.map((m) => {
            const key = `${m.name}/${m.version}`;
            return (
              <tr key={key} data-model={key}>
                <td>{key}</td>
                <td><code>{m.url}</code></td>
                <td data-testid="model-status">{state[key] ?? ''}</td>
                <td>
                  <button type="button" onClick={() => void act(key, async () => ((await api.register(m.name, m.version)).new ? 'registered' : 'already registered'))}>Register</button>{' '}
                  <button type="button" onClick={() => void act(key, async () => (await api.unregister(m.name, m.version), 'unregistered'))}>Unregister</button>{' '}
                  <a href={`#/train/${encodeURIComponent(m.name)}/${encodeURIComponent(m.version)}`}>Train</a>{' '}
                  <a href={`#/infer/${encodeURIComponent(m.name)}/${encodeURIComponent(m.version)}`}>Infer</a>
                  {owner && (
                    <>
                      {' '}
                      <button type="button" data-testid="undeploy" onClick={() => void act(key, async () => (await api.undeploy(m.name, m.version), await reload(), 'undeployed'))}>Undeploy</button>
                    </>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rows.length === 0 && <p>No model is deployed yet{owner ? ': deploy one below.' : ' (owners deploy from this page, the REST API or the CLI).'}</p>}
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
      {owner && <Deploy onDeployed={reload} />}
    </section>
  );
}

/** Owner: deploy_model, then (with both files) the inference deploy bundle; the service calibrates. */
function Deploy(props: { onDeployed: () => Promise<void> }) {
  const [name, setName] = useState('');
  const [version, setVersion] = useState('1');
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');
  const onnx = useRef<HTMLInputElement>(null);
  const calibration = useRef<HTMLInputElement>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError('');
    setStatus('');
    const model = onnx.current?.files?.[0];
    const calib = calibration.current?.files?.[0];
    if ((model === undefined) !== (calib === undefined)) {
      setError(model === undefined ? 'an ONNX model is needed with the calibration inputs (or leave both empty to deploy for training only)' : 'calibration inputs (.npz or .npy) are needed with the ONNX model (or leave both empty to deploy for training only)');
      return;
    }
    setBusy(true);
    try {
      const { modelUrl } = await api.deploy(name, version);
      let line = `deployed ${name}/${version} at ${modelUrl}`;
      if (model !== undefined && calib !== undefined) {
        setStatus(`${line}; calibrating ${model.name} on the service (he keyparams)…`);
        const bundle = packDeployBundle(new Uint8Array(await model.arrayBuffer()), new Uint8Array(await calib.arrayBuffer()));
        const r = await api.deployInference(name, version, bundle);
        line += `; for encrypted inference: depth ${r.depth}, N = ${r.polyModulusDegree}, ${r.packing} packing, keyparams at ${r.keyParamsUrl}`;
      }
      setStatus(line);
      await props.onDeployed();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form data-testid="deploy" onSubmit={(e) => void submit(e)}>
      <h2>Deploy a model (owner)</h2>
      <p>Deploys the name and version for encrypted training (logistic regression). With an ONNX model and calibration inputs (.npz of .npy arrays, or one .npy), also for encrypted inference: the service runs <code>he keyparams</code> on them and publishes the calibrated model and its key parameters at the model URL.</p>
      <label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>{' '}
      <label>Version <input name="version" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,63}" value={version} onInput={(e) => setVersion(e.currentTarget.value)} /></label>
      <br />
      <label>ONNX model <input name="onnx" type="file" accept=".onnx" ref={onnx} /></label>{' '}
      <label>Calibration <input name="calibration" type="file" accept=".npz,.npy,.zip" ref={calibration} /></label>
      <br />
      <button type="submit" disabled={busy}>{busy ? 'Deploying…' : 'Deploy'}</button>
      {status !== '' && <p data-testid="deploy-status">{status}</p>}
      {error !== '' && <p class="error" role="alert" data-testid="deploy-error">{error}</p>}
    </form>
  );
}
