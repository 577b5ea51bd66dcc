import { useEffect, useMemo } from 'react';
import type { ChatClient, ChatSnapshot } from '../protocol/chat-client.js';
import { isUnfinished } from '../protocol/chat-state.js';
import { loadHighlighter } from '../render/highlighter.js';
import { Composer } from './Composer.js';
import { MessageList } from './MessageList.js';
import type { TurnActions } from './TurnView.js';

interface ChatViewProps {
  readonly client: ChatClient;
  readonly snapshot: ChatSnapshot;
  /** Greets the person in an empty conversation. */
  readonly name: string;
}

/** The conversation and the composer: the same for an anonymous chat and a person's conversation. */
export function ChatView({ client, snapshot, name }: ChatViewProps) {
  const { phase, connection, chat } = snapshot;
  const actions = useMemo<TurnActions>(
    () => ({
      onRetry: (key) => void client.retry(key),
      onEdit: (seq, text) => void client.edit(seq, text),
      onRegenerate: (seq) => void client.regenerate(seq),
      onSwitch: (seq) => void client.switchTo(seq),
    }),
    [client],
  );

  useEffect(() => {
    // Fetch the highlighter while the user reads or types, before the first code block needs it.
    const timer = window.setTimeout(() => void loadHighlighter(), 1500);
    return () => window.clearTimeout(timer);
  }, []);

  const online = connection === 'online' || connection === 'degraded';
  const answering = chat.turns.some((turn) => turn.seq !== undefined && isUnfinished(turn));
  return (
    <>
      {phase === 'loading' ? (
        <main className="messages loading" aria-busy="true">
          <p className="muted">Loading your conversation…</p>
        </main>
      ) : (
        <MessageList chat={chat} online={online} name={name} actions={actions} />
      )}
      <Composer onSend={(text) => client.send(text)} onStop={() => void client.stop()} canStop={answering && online} />
    </>
  );
}
