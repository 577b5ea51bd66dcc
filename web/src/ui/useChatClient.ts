import { useEffect, useState, useSyncExternalStore } from 'react';
import { browserClientOptions } from '../protocol/browser.js';
import { ChatClient, type ChatClientOptions, type ChatSnapshot } from '../protocol/chat-client.js';
import type { SessionView } from '../protocol/types.js';
import { localOutbox } from '../storage.js';

/**
 * One client per mounted chat; it reconnects on its own, and faster when the network returns.
 * `api` loads the history: the anonymous session API, or a signed-in person's conversation.
 */
export function useChatClient(token: string, initialSession: SessionView | undefined, api: ChatClientOptions['api']): { client: ChatClient; snapshot: ChatSnapshot } {
  const [client] = useState(
    () => new ChatClient({ token, api, outbox: localOutbox, ...browserClientOptions(), ...(initialSession === undefined ? {} : { initialSession }) }),
  );
  useEffect(() => {
    client.start();
    const wake = () => {
      if (document.visibilityState === 'visible') client.reconnectNow();
    };
    window.addEventListener('online', wake);
    document.addEventListener('visibilitychange', wake);
    return () => {
      window.removeEventListener('online', wake);
      document.removeEventListener('visibilitychange', wake);
      client.dispose();
    };
  }, [client]);
  const snapshot = useSyncExternalStore(client.subscribe, client.getSnapshot);
  return { client, snapshot };
}
