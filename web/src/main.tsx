import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import type { SessionInfo, TokenRow } from './api.ts';
import { Infer } from './infer.tsx';
import { Jobs } from './jobs.tsx';
import { Models } from './models.tsx';
import { Train } from './train.tsx';
import { errorMessage, useTask } from './use-task.ts';
import './style.css';

/**
 * The cipherml web console (issue 17): sign-up, sign-in, sign-out, API tokens, model
 * registration (#/models), the caller's jobs (#/jobs) and, per model, the browser as the trusted
 * gateway: training (#/train/NAME/VERSION: keys, encryption, the fit job, decryption,
 * prediction) and encrypted inference (#/infer/NAME/VERSION). Routing is by location hash so the
 * service serves one page. Not in this build yet: deploying models from the page.
 */

type Page = 'signin' | 'signup' | 'tokens' | 'models' | 'jobs' | 'train' | 'infer';
const PAGES: readonly Page[] = ['signin', 'signup', 'tokens', 'models', 'jobs'];
const pageOf = (): Page => {
  const m = /^#\/(train|infer)\/[^/]+\/[^/]+$/.exec(location.hash);
  return m !== null ? (m[1] as 'train' | 'infer') : (PAGES.find((p) => location.hash === `#/${p}`) ?? 'signin');
};
const modelOf = (): string => decodeURIComponent(location.hash.replace(/^#\/(train|infer)\//, ''));
type Signed = 'tokens' | 'models' | 'jobs' | 'train' | 'infer';
const SIGNED: readonly Page[] = ['tokens', 'models', 'jobs', 'train', 'infer'];
const go = (p: Page): void => {
  location.hash = `#/${p}`;
};
const when = (t: number | null): string => (t === null ? 'never' : new Date(t).toISOString().replace('T', ' ').slice(0, 16) + ' UTC');

function Credentials(props: { mode: 'signin' | 'signup'; onSession: (s: SessionInfo) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, run } = useTask();
  const signup = props.mode === 'signup';
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    await run(async () => {
      props.onSession(signup ? await api.signUp(name, password) : await api.signIn(name, password));
      return '';
    });
  };
  return (
    <main class="card">
      <h1>{signup ? 'Create an account' : 'Sign in'}</h1>
      <form onSubmit={(e) => void submit(e)} data-testid={`${props.mode}-form`}>
        <label>
          User name
          <input name="name" autocomplete="username" required maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Password {signup ? '(at least 12 characters)' : ''}
          <input name="password" type="password" autocomplete={signup ? 'new-password' : 'current-password'} required minLength={signup ? 12 : 1} maxLength={256} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>{signup ? 'Sign up' : 'Sign in'}</button>
      </form>
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
      <p>{signup ? <a href="#/signin">I have an account</a> : <a href="#/signup">Create an account</a>}</p>
    </main>
  );
}

function Shell(props: { session: SessionInfo; page: Signed; onSignOut: () => void }) {
  const signOut = async (): Promise<void> => {
    try {
      await api.signOut();
    } finally {
      props.onSignOut();
    }
  };
  return (
    <main class="wide">
      <header>
        <span>
          Signed in as <strong data-testid="user">{props.session.user.name}</strong> ({props.session.user.role})
        </span>
        <nav>
          <a href="#/tokens" aria-current={props.page === 'tokens' ? 'page' : undefined}>API tokens</a> · <a href="#/models" aria-current={props.page === 'models' || props.page === 'train' || props.page === 'infer' ? 'page' : undefined}>Models</a> ·{' '}
          <a href="#/jobs" aria-current={props.page === 'jobs' ? 'page' : undefined}>Jobs</a>
        </nav>
        <button type="button" onClick={() => void signOut()} data-testid="signout">Sign out</button>
      </header>
      {props.page === 'tokens' ? (
        <Tokens />
      ) : props.page === 'train' ? (
        <Train key={modelOf()} user={props.session.user.name} model={modelOf()} />
      ) : props.page === 'infer' ? (
        <Infer key={modelOf()} user={props.session.user.name} model={modelOf()} />
      ) : props.page === 'jobs' ? (
        <Jobs />
      ) : (
        <Models role={props.session.user.role} />
      )}
    </main>
  );
}

function Tokens() {
  const [rows, setRows] = useState<readonly TokenRow[]>([]);
  const [name, setName] = useState('');
  const [days, setDays] = useState(30);
  const [fresh, setFresh] = useState<{ name: string; token: string } | undefined>(undefined);
  const [error, setError] = useState('');
  const refresh = async (): Promise<void> => {
    try {
      setRows(await api.tokens());
    } catch (err) {
      setError(errorMessage(err));
    }
  };
  useEffect(() => void refresh(), []);
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError('');
    try {
      const t = await api.createToken(name, days);
      setFresh({ name: t.name, token: t.token });
      setName('');
      await refresh();
    } catch (err) {
      setError(errorMessage(err));
    }
  };
  const revoke = async (id: string): Promise<void> => {
    setError('');
    try {
      await api.revokeToken(id);
      await refresh();
    } catch (err) {
      setError(errorMessage(err));
    }
  };
  return (
    <section>
      <h1>API tokens</h1>
      <p>Tokens authenticate the REST API and the command-line gateway (<code>Authorization: Bearer …</code>). A token is shown once, when it is made.</p>
      <form class="row" onSubmit={(e) => void create(e)} data-testid="create-token">
        <label>
          Name
          <input name="token-name" required maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9 ._\-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Expires in (days)
          <input name="token-days" type="number" min={1} max={365} required value={days} onInput={(e) => setDays(Number(e.currentTarget.value))} />
        </label>
        <button type="submit">Create token</button>
      </form>
      {fresh !== undefined && (
        <div class="fresh" data-testid="fresh-token">
          <p>
            Token <strong>{fresh.name}</strong>: copy it now, it will not be shown again.
          </p>
          <code data-testid="token-value">{fresh.token}</code>
          <button type="button" onClick={() => setFresh(undefined)}>Done</button>
        </div>
      )}
      {error !== '' && <p class="error" role="alert" data-testid="error">{error}</p>}
      <table data-testid="tokens">
        <thead>
          <tr><th>Name</th><th>Id</th><th>Created</th><th>Expires</th><th>Status</th><th /></tr>
        </thead>
        <tbody>
          {rows.map((t) => (
            <tr key={t.id} data-token-id={t.id}>
              <td>{t.name}</td>
              <td><code>{t.id}</code></td>
              <td>{when(t.createdAt)}</td>
              <td>{when(t.expiresAt)}</td>
              <td data-testid="status">{t.status}</td>
              <td>{t.status === 'active' && <button type="button" onClick={() => void revoke(t.id)}>Revoke</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="note">Encrypted training and prediction in this browser: Models → Train; encrypted inference on a deployed ONNX model: Models → Infer; progress, logs and cancel: Jobs. Owners deploy and undeploy models in Models.</p>
    </section>
  );
}

function App() {
  const [page, setPage] = useState<Page>(pageOf());
  const [session, setSession] = useState<SessionInfo | undefined>(undefined);
  const [checked, setChecked] = useState(false);
  useEffect(() => {
    const onHash = (): void => setPage(pageOf());
    addEventListener('hashchange', onHash);
    api.session().then(
      (s) => {
        setSession(s);
        if (!SIGNED.includes(pageOf()) || pageOf() === 'tokens') go('tokens');
      },
      () => undefined,
    ).finally(() => setChecked(true));
    return () => removeEventListener('hashchange', onHash);
  }, []);
  if (!checked) return <main class="card">Loading…</main>;
  if (SIGNED.includes(page) && session !== undefined) {
    return <Shell session={session} page={page as Signed} onSignOut={() => { setSession(undefined); go('signin'); }} />;
  }
  const onSession = (s: SessionInfo): void => {
    setSession(s);
    go('tokens');
  };
  return <Credentials key={page} mode={page === 'signup' ? 'signup' : 'signin'} onSession={onSession} />;
}

render(<App />, document.getElementById('app')!);
