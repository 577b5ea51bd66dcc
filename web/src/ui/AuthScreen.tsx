import { createContext, useContext, useId, useState, type FormEvent, type ReactNode } from 'react';
import { hasAccounts, OIDC_START_URL, type ApiResult, type AuthConfig, type Person } from '../protocol/account-api.js';
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
  const accounts = hasAccounts(config);
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

function SignInForm({ onSignedIn }: { readonly onSignedIn: (person: Person) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  return (
    <AccountForm label="Sign in" submitLabel="Sign in" busyLabel="Signing in…" action={() => accountApi.signIn(username, password)} onSignedIn={onSignedIn}>
      <TextField label="User name" name="username" autoComplete="username" autoFocus value={username} onChange={setUsername} />
      <TextField label="Password" name="password" type="password" autoComplete="current-password" value={password} onChange={setPassword} />
    </AccountForm>
  );
}

function SignUpForm({ invite, onSignedIn }: { readonly invite: boolean; readonly onSignedIn: (person: Person) => void }) {
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const signUp = () => accountApi.signUp({ username, password, displayName, ...(invite ? { invite: code } : {}) });
  return (
    <AccountForm label="Create an account" submitLabel="Create account" busyLabel="Creating your account…" action={signUp} onSignedIn={onSignedIn}>
      <TextField label="User name" name="username" autoComplete="username" autoFocus value={username} onChange={setUsername} />
      <TextField label="Display name (optional)" name="displayName" autoComplete="name" value={displayName} onChange={setDisplayName} unaffectedByError />
      <TextField label="Password" hint="At least 8 characters." name="password" type="password" autoComplete="new-password" value={password} onChange={setPassword} />
      {invite ? <TextField label="Invitation code" name="invite" autoComplete="off" value={code} onChange={setCode} /> : null}
    </AccountForm>
  );
}

/** The form's error and the id of its message, for the fields it is about. */
interface FormErrorLink {
  readonly error: string | undefined;
  readonly errorId: string;
}

const FormErrorContext = createContext<FormErrorLink | undefined>(undefined);

interface AccountFormProps {
  /** The form's accessible name. */
  readonly label: string;
  readonly submitLabel: string;
  /** The submit button's text while the server answers. */
  readonly busyLabel: string;
  readonly action: () => Promise<ApiResult<Person>>;
  readonly onSignedIn: (person: Person) => void;
  /** The TextFields: each is tied to the form's error. */
  readonly children: ReactNode;
}

/** Runs one submission: busy while it runs, the server's `detail` as the form's error when it fails. */
function AccountForm({ label, submitLabel, busyLabel, action, onSignedIn, children }: AccountFormProps) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const errorId = useId();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const result = await action();
    setBusy(false);
    if (result.ok) onSignedIn(result.value);
    else setError(result.detail);
  };
  return (
    <form className="start-form" onSubmit={(event) => void submit(event)} aria-label={label} noValidate>
      <FormErrorContext value={{ error, errorId }}>{children}</FormErrorContext>
      {error === undefined ? null : (
        <p id={errorId} className="field-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="button button-primary button-wide" disabled={busy}>
        {busy ? busyLabel : submitLabel}
      </button>
    </form>
  );
}

interface TextFieldProps {
  readonly label: string;
  readonly hint?: string;
  readonly name: string;
  readonly type?: 'password';
  readonly autoComplete: string;
  readonly autoFocus?: boolean;
  readonly value: string;
  readonly onChange: (value: string) => void;
  /** The form's error is never about this field: it is not marked invalid with the others. */
  readonly unaffectedByError?: boolean;
}

/** A labelled input, described by its hint and by the error of the AccountForm around it. */
function TextField({ label, hint, unaffectedByError = false, onChange, ...input }: TextFieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  const formError = useContext(FormErrorContext);
  const errorId = unaffectedByError || formError?.error === undefined ? undefined : formError.errorId;
  const describedBy = [hint === undefined ? undefined : hintId, errorId].filter(Boolean).join(' ');
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        {...input}
        id={id}
        aria-invalid={errorId !== undefined}
        aria-describedby={describedBy === '' ? undefined : describedBy}
        onChange={(event) => onChange(event.target.value)}
      />
      {hint === undefined ? null : (
        <p id={hintId} className="field-hint">
          {hint}
        </p>
      )}
    </div>
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
