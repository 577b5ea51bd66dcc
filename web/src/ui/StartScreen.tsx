import { useState, type FormEvent } from 'react';
import { sessionApi } from '../protocol/browser.js';
import type { SessionView } from '../protocol/types.js';

interface StartScreenProps {
  /** Why the user is here again (e.g. the session expired); shown above the form. */
  readonly notice: string | undefined;
  readonly onSession: (session: SessionView) => void;
}

export function StartScreen({ notice, onSession }: StartScreenProps) {
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
    <main className="start-screen">
      <div className="start-card">
        <div className="brand brand-large" aria-hidden="true">
          P
        </div>
        <h1>Parley</h1>
        <p className="muted tagline">Your own chat with a language model. Answers stream as they are written.</p>
        {notice === undefined ? null : (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        <form className="start-form" onSubmit={(event) => void onSubmit(event)} noValidate>
          <label htmlFor="name-input">Your name</label>
          <input
            id="name-input"
            name="name"
            autoComplete="nickname"
            autoFocus
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
          <button type="submit" className="button button-primary button-wide" disabled={busy}>
            {busy ? 'Starting…' : 'Start chatting'}
          </button>
        </form>
      </div>
    </main>
  );
}
