import { useCallback, useEffect, useState } from 'react';
import { sessionApi } from '../protocol/browser.js';
import { isUnfinished } from '../protocol/chat-state.js';
import { loadHighlighter } from '../render/highlighter.js';
import type { SessionView } from '../protocol/types.js';
import { ChatHeader } from './ChatHeader.js';
import { Composer } from './Composer.js';
import { MessageList } from './MessageList.js';
import { useChatClient } from './useChatClient.js';

interface ChatScreenProps {
  readonly token: string;
  readonly initialSession: SessionView | undefined;
  readonly onSession: (session: SessionView) => void;
  readonly onExpired: () => void;
}

export function ChatScreen({ token, initialSession, onSession, onExpired }: ChatScreenProps) {
  const { client, snapshot } = useChatClient(token, initialSession);
  const [newChatError, setNewChatError] = useState<string>();
  const [startingNewChat, setStartingNewChat] = useState(false);
  const { phase, connection, failures, session, chat } = snapshot;

  useEffect(() => {
    if (phase === 'expired') onExpired();
  }, [phase, onExpired]);

  useEffect(() => {
    // Fetch the highlighter while the user reads or types, before the first code block needs it.
    const timer = window.setTimeout(() => void loadHighlighter(), 1500);
    return () => window.clearTimeout(timer);
  }, []);

  useEffect(() => {
    document.title = session === undefined ? 'Parley' : `${session.name} · Parley`;
  }, [session]);

  const newChat = async () => {
    setStartingNewChat(true);
    setNewChatError(undefined);
    const result = await sessionApi.create(session?.name ?? '');
    setStartingNewChat(false);
    if (result.ok) onSession(result.session);
    else setNewChatError(result.message);
  };

  const onRetry = useCallback((key: string) => void client.retry(key), [client]);
  const online = connection === 'online' || connection === 'degraded';
  const answering = chat.turns.some((turn) => turn.seq !== undefined && isUnfinished(turn));

  return (
    <div className="chat-screen">
      <ChatHeader
        session={session}
        connection={connection}
        failures={failures}
        startingNewChat={startingNewChat}
        onNewChat={() => void newChat()}
        onReconnect={() => client.reconnectNow()}
      />
      {newChatError === undefined ? null : (
        <p className="banner" role="alert">
          {newChatError}
        </p>
      )}
      {phase === 'loading' ? (
        <main className="messages loading" aria-busy="true">
          <p className="muted">Loading your conversation…</p>
        </main>
      ) : (
        <MessageList turns={chat.turns} online={online} name={session?.name ?? ''} onRetry={onRetry} />
      )}
      <Composer onSend={(text) => client.send(text)} onStop={() => void client.stop()} canStop={answering && online} />
    </div>
  );
}
