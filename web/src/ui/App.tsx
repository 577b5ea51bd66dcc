import { useCallback, useState } from 'react';
import type { SessionView } from '../protocol/types.js';
import { loadToken, saveToken } from '../storage.js';
import { ChatScreen } from './ChatScreen.js';
import { StartScreen } from './StartScreen.js';

const EXPIRED_NOTICE = 'Your previous chat has ended: sessions expire after a while without activity. Enter your name to start a new one.';

type Screen = { readonly kind: 'start'; readonly notice?: string } | { readonly kind: 'chat'; readonly token: string; readonly session?: SessionView };

function initialScreen(): Screen {
  const token = loadToken();
  return token === undefined ? { kind: 'start' } : { kind: 'chat', token };
}

export function App() {
  const [screen, setScreen] = useState<Screen>(initialScreen);

  const enterChat = useCallback((session: SessionView) => {
    saveToken(session.token);
    setScreen({ kind: 'chat', token: session.token, session });
  }, []);

  const onExpired = useCallback(() => {
    saveToken(undefined);
    setScreen({ kind: 'start', notice: EXPIRED_NOTICE });
  }, []);

  if (screen.kind === 'start') return <StartScreen notice={screen.notice} onSession={enterChat} />;
  // Keyed by token: a new chat gets a fresh client and a fresh view.
  return <ChatScreen key={screen.token} token={screen.token} initialSession={screen.session} onSession={enterChat} onExpired={onExpired} />;
}
