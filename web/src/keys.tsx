import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import { loadRecord, openSecretKey, saveRecord, sealSecretKey } from './keystore.ts';
import type { KeyRecord } from './keystore.ts';

/**
 * CKKS keys made in this browser. The secret key is sealed under a passphrase (WebCrypto) and
 * kept in IndexedDB; nothing on this page sends a key or the passphrase to the service. SEAL's
 * wasm loads only when this page generates or checks a key.
 */
export function Keys(props: { user: string }) {
  const [record, setRecord] = useState<KeyRecord | undefined>(undefined);
  const [passphrase, setPassphrase] = useState('');
  const [status, setStatus] = useState('');
  const [result, setResult] = useState<{ keygenMs: number; encryptMs: number; maxAbsError: number } | undefined>(undefined);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [backup, setBackup] = useState(false);
  useEffect(() => {
    loadRecord(props.user).then(setRecord, (e: unknown) => setError(String(e)));
  }, [props.user]);

  const run = async (f: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError('');
    try {
      await f();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setStatus('');
    } finally {
      setBusy(false);
    }
  };
  const generate = (e: Event): void => {
    e.preventDefault();
    void run(async () => {
      setStatus('loading SEAL and generating keys…');
      const lab = await import('./seal-lab.ts');
      const r = await lab.generateAndCheck();
      setStatus('sealing the secret key under your passphrase…');
      const rec = await sealSecretKey(props.user, passphrase, r.secretKey, r.publicKey, lab.PARAMETERS);
      await saveRecord(rec);
      if (backup) {
        setStatus('keeping a sealed copy on the service…');
        await api.putKeyBackup(JSON.stringify(rec));
      }
      setRecord(rec);
      setResult({ keygenMs: r.keygenMs, encryptMs: r.encryptMs, maxAbsError: r.maxAbsError });
      setPassphrase('');
      setStatus(backup ? 'keys generated and stored in this browser; a sealed copy is on the service' : 'keys generated and stored in this browser');
    });
  };
  const restore = (): void => {
    void run(async () => {
      const text = await api.getKeyBackup();
      if (text === undefined) throw new Error('the service keeps no key record for you');
      const rec = JSON.parse(text) as KeyRecord;
      // The record's associated data names its user: a record of another user would not open anyway.
      if (rec.version !== 1 || rec.user !== props.user) throw new Error('the record on the service is not a version-1 record of this user');
      await saveRecord(rec);
      setRecord(rec);
      setStatus('sealed key record restored from the service; unlock it with your passphrase');
    });
  };
  const unlock = (e: Event): void => {
    e.preventDefault();
    void run(async () => {
      if (record === undefined) return;
      setStatus('unlocking…');
      const sk = await openSecretKey(record, passphrase);
      const lab = await import('./seal-lab.ts');
      const err = await lab.checkKeyPair(sk, record.publicKey);
      setPassphrase('');
      setStatus(`unlocked: the secret key decrypts what its public key encrypts (max error ${err.toExponential(2)})`);
    });
  };

  return (
    <section data-testid="keys">
      <h1>CKKS keys in this browser</h1>
      <p>
        Keys are generated here with Microsoft SEAL (WebAssembly, loaded on first use). The secret key is encrypted under your passphrase (PBKDF2-SHA256, 600,000 iterations, AES-256-GCM) and kept in this browser's IndexedDB; it is never sent to the
        service in the clear. Optionally the service keeps the sealed record, so that you can restore it in another browser; the service cannot open it without your passphrase.
      </p>
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
            Key set <code data-testid="key-fingerprint">{record.fingerprint}</code> (N = {record.parameters.polyModulusDegree}), made {new Date(record.createdAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.
          </p>
          <form class="row" onSubmit={unlock} data-testid="unlock-form">
            <label>
              Passphrase
              <input name="unlock-passphrase" type="password" autocomplete="current-password" required value={passphrase} onInput={(e) => setPassphrase(e.currentTarget.value)} />
            </label>
            <button type="submit" disabled={busy}>Unlock and check</button>
          </form>
        </>
      )}
      {result !== undefined && (
        <p data-testid="key-result" data-keygen-ms={result.keygenMs.toFixed(0)} data-encrypt-ms={result.encryptMs.toFixed(0)} data-max-error={String(result.maxAbsError)}>
          Key generation {result.keygenMs.toFixed(0)} ms; encrypt + decrypt of {4096} slots {result.encryptMs.toFixed(0)} ms; max error {result.maxAbsError.toExponential(2)}.
        </p>
      )}
      {status !== '' && <p data-testid="key-status">{status}</p>}
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
      <p class="note">Not in this build yet: uploading the public context to a model, encrypting a CSV and training or predicting from this page (use the CLI gateway meanwhile).</p>
    </section>
  );
}
