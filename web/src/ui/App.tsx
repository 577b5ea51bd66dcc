import { useCallback, useEffect, useState } from 'react';
import { ANONYMOUS_ONLY, authErrorNotice, hasAccounts, type AuthConfig, type Person } from '../protocol/account-api.js';
import { accountApi } from '../protocol/browser.js';
import type { SessionView } from '../protocol/types.js';
import { loadToken, saveOpenConversation, saveToken } from '../storage.js';
import { AuthScreen } from './AuthScreen.js';
import { ChatScreen } from './ChatScreen.js';
import { Workspace } from './Workspace.js';

const EXPIRED_NOTICE = 'Your previous chat has ended: sessions expire after a while without activity. Enter your name to start a new one.';
const SIGNED_OUT_ELSEWHERE = 'You were signed out (perhaps on another device). Sign in again to continue.';

type Screen =
  | { readonly kind: 'loading' }
  | { readonly kind: 'start'; readonly notice?: string }
  | { readonly kind: 'chat'; readonly token: string; readonly session?: SessionView }
  | { readonly kind: 'workspace'; readonly person: Person };

/** Who is here decides the screen: a signed-in person, an anonymous chat kept in this browser, or the sign-in screen. */
async function firstScreen(config: AuthConfig): Promise<Screen> {
  const oidcError = authErrorNotice(window.location.search);
  // The code has been read: a reload or a bookmark should not show it again.
  if (oidcError !== undefined) window.history.replaceState(null, '', '/');
  const me = await accountApi.me();
  if (me.ok && me.value !== null) return { kind: 'workspace', person: me.value };
  if (oidcError !== undefined) return { kind: 'start', notice: oidcError };
  const token = loadToken();
  return token !== undefined && config.anonymous ? { kind: 'chat', token } : { kind: 'start' };
}

export function App() {
  const [config, setConfig] = useState<AuthConfig>(ANONYMOUS_ONLY);
  const [screen, setScreen] = useState<Screen>({ kind: 'loading' });

  useEffect(() => {
    let cancelled = false;
    void accountApi.config().then(async (loaded) => {
      const first = await firstScreen(loaded);
      if (cancelled) return;
      setConfig(loaded);
      setScreen(first);
    });
    return () => {
      cancelled = true;
    };
  }, []);

  useEffect(
    () =>
      accountApi.onSignedOut(() => {
        setScreen((current) => (current.kind === 'workspace' ? { kind: 'start', notice: SIGNED_OUT_ELSEWHERE } : current));
      }),
    [],
  );

  const enterChat = useCallback((session: SessionView) => {
    saveToken(session.token);
    setScreen({ kind: 'chat', token: session.token, session });
  }, []);

  const onExpired = useCallback(() => {
    saveToken(undefined);
    setScreen({ kind: 'start', notice: EXPIRED_NOTICE });
  }, []);

  const onSignedOut = useCallback((notice: string) => {
    saveOpenConversation(undefined);
    setScreen({ kind: 'start', notice });
  }, []);

  switch (screen.kind) {
    case 'loading':
      return <main className="start-screen" aria-busy="true" />;
    case 'start':
      return <AuthScreen config={config} notice={screen.notice} onSignedIn={(person) => setScreen({ kind: 'workspace', person })} onSession={enterChat} />;
    case 'workspace':
      return <Workspace person={screen.person} onSignedOut={onSignedOut} />;
    case 'chat': {
      const accounts = hasAccounts(config);
      // Keyed by token: a new chat gets a fresh client and a fresh view.
      return (
        <ChatScreen
          key={screen.token}
          token={screen.token}
          initialSession={screen.session}
          onSession={enterChat}
          onExpired={onExpired}
          onSignIn={accounts ? () => setScreen({ kind: 'start' }) : undefined}
        />
      );
    }
  }
}
