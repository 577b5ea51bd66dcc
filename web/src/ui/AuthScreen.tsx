import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { OIDC_START_URL, type ApiResult, type AuthConfig, type Person } from '../protocol/account-api.js';
import { accountApi, sessionApi } from '../protocol/browser.js';
import type { SessionView } from '../protocol/types.js';

interface AuthScreenProps {
  readonly config: AuthConfig;
  /** Why the person is here (signed out, session expired, account deleted); shown above the forms. */
  readonly notice: string | undefined;
  readonly onSignedIn: (person: Person) => void;
  /** The anonymous "just start chatting" path. */
  readonly onSession: (session: SessionView) => void;
}

type Mode = 'signin' | 'signup';

/** Sign in, create an account, or (when the operator allows it) chat without one. */
export function AuthScreen({ config, notice, onSignedIn, onSession }: AuthScreenProps) {
  const canSignUp = config.local && config.signup !== 'closed';
  const [mode, setMode] = useState<Mode>('signin');
  const accounts = config.local || config.oidc !== null;
  const signingUp = mode === 'signup' && canSignUp;

  return (
    <main className="start-screen">
      <div className="start-card">
        <div className="brand brand-large" aria-hidden="true">
          P
        </div>
        <h1>{!accounts ? 'Parley' : signingUp ? 'Create your account' : 'Sign in to Parley'}</h1>
        <p className="muted tagline">
          {accounts ? 'Your conversations, kept and searchable, on every device.' : 'Your own chat with a language model. Answers stream as they are written.'}
        </p>
        {notice === undefined ? null : (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        {config.local ? signingUp ? <SignUpForm invite={config.signup === 'invite'} onSignedIn={onSignedIn} /> : <SignInForm onSignedIn={onSignedIn} /> : null}
        {config.oidc === null ? null : (
          <a className="button button-wide oidc-button" href={OIDC_START_URL}>
            Sign in with {config.oidc.label}
          </a>
        )}
        {canSignUp ? (
          <p className="switch-mode">
            {signingUp ? 'Already have an account?' : 'New here?'}{' '}
            <button type="button" className="link-button" onClick={() => setMode(signingUp ? 'signin' : 'signup')}>
              {signingUp ? 'Sign in' : 'Create an account'}
            </button>
          </p>
        ) : null}
        {config.anonymous ? <AnonymousStart separate={accounts} onSession={onSession} /> : null}
        {!accounts && !config.anonymous ? <p className="notice">This server offers no way to sign in. Ask its operator.</p> : null}
      </div>
    </main>
  );
}

/** Runs one submission: busy while it runs, the server's `detail` as the error when it fails. */
function useSubmit<T>(action: () => Promise<ApiResult<T>>, onDone: (value: T) => void) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const result = await action();
    setBusy(false);
    if (result.ok) onDone(result.value);
    else setError(result.detail);
  };
  return { error, busy, onSubmit: (event: FormEvent) => void submit(event) };
}

function SignInForm({ onSignedIn }: { readonly onSignedIn: (person: Person) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const { error, busy, onSubmit } = useSubmit(() => accountApi.signIn(username, password), onSignedIn);
  const errorId = useId();
  return (
    <form className="start-form" onSubmit={onSubmit} aria-label="Sign in" noValidate>
      <Field label="User name" error={error} errorId={errorId}>
        {(link) => <input {...link} name="username" autoComplete="username" autoFocus value={username} onChange={(event) => setUsername(event.target.value)} />}
      </Field>
      <Field label="Password" error={error} errorId={errorId}>
        {(link) => <input {...link} name="password" type="password" autoComplete="current-password" value={password} onChange={(event) => setPassword(event.target.value)} />}
      </Field>
      <FormError id={errorId} error={error} />
      <button type="submit" className="button button-primary button-wide" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}

function SignUpForm({ invite, onSignedIn }: { readonly invite: boolean; readonly onSignedIn: (person: Person) => void }) {
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const { error, busy, onSubmit } = useSubmit(() => accountApi.signUp({ username, password, displayName, ...(invite ? { invite: code } : {}) }), onSignedIn);
  const errorId = useId();
  return (
    <form className="start-form" onSubmit={onSubmit} aria-label="Create an account" noValidate>
      <Field label="User name" error={error} errorId={errorId}>
        {(link) => <input {...link} name="username" autoComplete="username" autoFocus value={username} onChange={(event) => setUsername(event.target.value)} />}
      </Field>
      <Field label="Display name (optional)" error={undefined} errorId={errorId}>
        {(link) => <input {...link} name="displayName" autoComplete="name" value={displayName} onChange={(event) => setDisplayName(event.target.value)} />}
      </Field>
      <Field label="Password" hint="At least 8 characters." error={error} errorId={errorId}>
        {(link) => <input {...link} name="password" type="password" autoComplete="new-password" value={password} onChange={(event) => setPassword(event.target.value)} />}
      </Field>
      {invite ? (
        <Field label="Invitation code" error={error} errorId={errorId}>
          {(link) => <input {...link} name="invite" autoComplete="off" value={code} onChange={(event) => setCode(event.target.value)} />}
        </Field>
      ) : null}
      <FormError id={errorId} error={error} />
      <button type="submit" className="button button-primary button-wide" disabled={busy}>
        {busy ? 'Creating your account…' : 'Create account'}
      </button>
    </form>
  );
}

interface InputLink {
  readonly id: string;
  readonly 'aria-invalid': boolean;
  readonly 'aria-describedby': string | undefined;
}

interface FieldProps {
  readonly label: string;
  readonly hint?: string;
  readonly error: string | undefined;
  readonly errorId: string;
  /** Renders the input with the attributes that tie it to its label, hint and the form's error. */
  readonly children: (link: InputLink) => ReactNode;
}

function Field({ label, hint, error, errorId, children }: FieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  const describedBy = [hint === undefined ? undefined : hintId, error === undefined ? undefined : errorId].filter(Boolean).join(' ');
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-invalid': error !== undefined, 'aria-describedby': describedBy === '' ? undefined : describedBy })}
      {hint === undefined ? null : (
        <p id={hintId} className="field-hint">
          {hint}
        </p>
      )}
    </div>
  );
}

function FormError({ id, error }: { readonly id: string; readonly error: string | undefined }) {
  return error === undefined ? null : (
    <p id={id} className="field-error" role="alert">
      {error}
    </p>
  );
}

/** The anonymous chat, as before accounts existed: a name, and the conversation starts. */
function AnonymousStart({ separate, onSession }: { readonly separate: boolean; readonly onSession: (session: SessionView) => void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    if (name.trim() === '') {
      setError('Enter your name to start.');
      return;
    }
    setBusy(true);
    setError(undefined);
    const result = await sessionApi.create(name);
    setBusy(false);
    if (result.ok) onSession(result.session);
    else setError(result.message);
  };

  return (
    <section className={separate ? 'anonymous-start separated' : 'anonymous-start'} aria-label="Chat without an account">
      {separate ? (
        <p className="divider">
          <span>or just start chatting</span>
        </p>
      ) : null}
      <form className="start-form" onSubmit={(event) => void onSubmit(event)} noValidate>
        <label htmlFor="name-input">Your name</label>
        <input
          id="name-input"
          name="name"
          autoComplete="nickname"
          autoFocus={!separate}
          value={name}
          aria-invalid={error !== undefined}
          aria-describedby={error === undefined ? undefined : 'name-error'}
          onChange={(event) => setName(event.target.value)}
        />
        {error === undefined ? null : (
          <p id="name-error" className="field-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className={separate ? 'button button-wide' : 'button button-primary button-wide'} disabled={busy}>
          {busy ? 'Starting…' : 'Start chatting'}
        </button>
      </form>
    </section>
  );
}
