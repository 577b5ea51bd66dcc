import { useEffect, useState } from 'react';
import { sessionApi } from '../protocol/browser.js';
import type { SessionView } from '../protocol/types.js';
import { ChatHeader } from './ChatHeader.js';
import { ChatView } from './ChatView.js';
import { useChatClient } from './useChatClient.js';

interface ChatScreenProps {
  readonly token: string;
  readonly initialSession: SessionView | undefined;
  readonly onSession: (session: SessionView) => void;
  readonly onExpired: () => void;
  /** Offered when the server has accounts: leaves the anonymous chat for the sign-in screen. */
  readonly onSignIn: (() => void) | undefined;
}

/** The anonymous chat: one session per name, kept for its sliding lifetime. */
export function ChatScreen({ token, initialSession, onSession, onExpired, onSignIn }: ChatScreenProps) {
  const { client, snapshot } = useChatClient(token, initialSession, sessionApi);
  const [newChatError, setNewChatError] = useState<string>();
  const [startingNewChat, setStartingNewChat] = useState(false);
  const { phase, connection, failures, session } = snapshot;

  useEffect(() => {
    if (phase === 'expired') onExpired();
  }, [phase, onExpired]);

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

  return (
    <div className="chat-screen">
      <ChatHeader
        session={session}
        connection={connection}
        failures={failures}
        startingNewChat={startingNewChat}
        onNewChat={() => void newChat()}
        onReconnect={() => client.reconnectNow()}
        onSignIn={onSignIn}
      />
      {newChatError === undefined ? null : (
        <p className="banner" role="alert">
          {newChatError}
        </p>
      )}
      <ChatView client={client} snapshot={snapshot} name={session?.name ?? ''} />
    </div>
  );
}
