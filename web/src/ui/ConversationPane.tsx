import { useEffect, useRef, useState, type ReactNode } from 'react';
import { accountApi } from '../protocol/browser.js';
import type { ChatClientOptions } from '../protocol/chat-client.js';
import { ChatView } from './ChatView.js';
import { Composer } from './Composer.js';
import { ConnectionIndicator } from './ChatHeader.js';
import { EmptyState } from './MessageList.js';
import { UNTITLED } from './Sidebar.js';
import { useChatClient } from './useChatClient.js';

/** A person's conversation loads through the conversations API (the auth cookie proves whose it is). */
const conversationLoader: ChatClientOptions['api'] = { refresh: (id) => accountApi.loadConversation(id) };

interface PaneHeaderProps {
  readonly title: string;
  /** Opens the conversation list on phones. */
  readonly sidebarToggle: ReactNode;
  readonly children?: ReactNode;
}

function PaneHeader({ title, sidebarToggle, children }: PaneHeaderProps) {
  useEffect(() => {
    document.title = `${title} · Parley`;
  }, [title]);
  return (
    <header className="chat-header">
      <div className="header-inner">
        {sidebarToggle}
        <div className="session-info">
          <h1 className="session-name">{title}</h1>
        </div>
        {children}
      </div>
    </header>
  );
}

interface ConversationPaneProps {
  readonly id: string;
  /** The title the list shows, when the conversation is on the page loaded. */
  readonly title: string | undefined;
  readonly name: string;
  /** The message that started this conversation a moment ago, to send once it is open. */
  readonly firstMessage: string | undefined;
  readonly onFirstMessageTaken: () => void;
  /** A message was accepted: the list's order and the title may have changed. */
  readonly onActivity: () => void;
  /** The conversation no longer exists (deleted in another window) or is not this person's. */
  readonly onGone: () => void;
  readonly sidebarToggle: ReactNode;
}

export function ConversationPane({ id, title, name, firstMessage, onFirstMessageTaken, onActivity, onGone, sidebarToggle }: ConversationPaneProps) {
  const { client, snapshot } = useChatClient(id, undefined, conversationLoader);
  const { phase, connection, failures, chat, session } = snapshot;
  const firstTaken = useRef(false);

  useEffect(() => {
    if (firstMessage === undefined || firstTaken.current) return;
    firstTaken.current = true;
    client.send(firstMessage);
    onFirstMessageTaken();
  }, [client, firstMessage, onFirstMessageTaken]);

  useEffect(() => {
    if (phase === 'expired') onGone();
  }, [phase, onGone]);

  const accepted = chat.turns.filter((turn) => turn.seq !== undefined).length;
  // Undefined until the history is in: the turns it brings are not news for the list.
  const seenAccepted = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (phase !== 'ready') return;
    if (seenAccepted.current !== undefined && accepted > seenAccepted.current) onActivity();
    seenAccepted.current = accepted;
  }, [phase, accepted, onActivity]);

  return (
    <div className="chat-screen">
      <PaneHeader title={(title ?? session?.title) || UNTITLED} sidebarToggle={sidebarToggle}>
        <ConnectionIndicator connection={connection} failures={failures} onReconnect={() => client.reconnectNow()} />
      </PaneHeader>
      <ChatView client={client} snapshot={snapshot} name={name} />
    </div>
  );
}

interface NewConversationPaneProps {
  readonly name: string;
  /** Creates the conversation with its first message; resolves false when that failed. */
  readonly onStart: (text: string) => Promise<boolean>;
  readonly sidebarToggle: ReactNode;
}

/** A conversation not created yet: it is, with its first message. */
export function NewConversationPane({ name, onStart, sidebarToggle }: NewConversationPaneProps) {
  const [starting, setStarting] = useState(false);
  // The composer keeps the text (false: not sent yet): once the conversation exists this pane
  // gives way to it, and if it could not be created the person sends the same text again.
  const send = (text: string) => {
    if (!starting) {
      setStarting(true);
      void onStart(text).then(() => setStarting(false));
    }
    return false;
  };
  return (
    <div className="chat-screen">
      <PaneHeader title={UNTITLED} sidebarToggle={sidebarToggle} />
      <main className="messages" tabIndex={-1}>
        <div className="messages-inner">
          <EmptyState name={name} />
        </div>
      </main>
      <Composer onSend={send} onStop={() => undefined} canStop={false} />
    </div>
  );
}
