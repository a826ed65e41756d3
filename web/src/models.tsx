import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';

/** Deployed models: register for one (or unregister) through the REST API with the session. */
export function Models() {
  const [rows, setRows] = useState<readonly { name: string; version: string; url: string }[]>([]);
  const [state, setState] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  useEffect(() => {
    api.models().then(setRows, (e: unknown) => setError(String(e)));
  }, []);
  const act = async (key: string, f: () => Promise<string>): Promise<void> => {
    setError('');
    try {
      const label = await f();
      setState((s) => ({ ...s, [key]: label }));
    } catch (e) {
      setError(e instanceof ApiError ? `${e.message} (${e.code})` : String(e));
    }
  };
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
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rows.length === 0 && <p>No model is deployed yet (owners deploy with the REST API or the CLI).</p>}
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
    </section>
  );
}
