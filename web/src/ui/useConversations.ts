import { useCallback, useEffect, useRef, useState } from 'react';
import type { Conversation } from '../protocol/account-api.js';
import { accountApi } from '../protocol/browser.js';

/** Typing in the search box asks the server once the person pauses this long. */
const SEARCH_PAUSE_MS = 250;

export interface ConversationList {
  readonly items: readonly Conversation[];
  readonly hasMore: boolean;
  readonly loading: boolean;
  readonly error: string | undefined;
  readonly query: string;
  setQuery(query: string): void;
  /** Fetches the first page again (after a change here or a new message). */
  reload(): void;
  loadMore(): void;
  /** Shows a change at once, before the reload confirms it. */
  patch(id: string, change: Partial<Conversation> | null): void;
}

/** The person's conversations, newest first, filtered by the search text; later answers win over earlier ones. */
export function useConversations(): ConversationList {
  const [items, setItems] = useState<readonly Conversation[]>([]);
  const [next, setNext] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string>();
  const [query, setQuery] = useState('');
  const [generation, setGeneration] = useState(0);
  const latest = useRef(0);

  useEffect(() => {
    const request = ++latest.current;
    const timer = window.setTimeout(
      () => {
        setLoading(true);
        void accountApi.listConversations({ q: query }).then((result) => {
          if (request !== latest.current) return;
          setLoading(false);
          if (!result.ok) return setError(result.detail);
          setError(undefined);
          setItems(result.value.conversations);
          setNext(result.value.next);
        });
      },
      query === '' ? 0 : SEARCH_PAUSE_MS,
    );
    return () => window.clearTimeout(timer);
  }, [query, generation]);

  const reload = useCallback(() => setGeneration((value) => value + 1), []);

  const loadMore = useCallback(() => {
    if (next === undefined) return;
    const request = ++latest.current;
    setLoading(true);
    void accountApi.listConversations({ q: query, before: next }).then((result) => {
      if (request !== latest.current) return;
      setLoading(false);
      if (!result.ok) return setError(result.detail);
      setItems((current) => [...current, ...result.value.conversations.filter((item) => !current.some((known) => known.id === item.id))]);
      setNext(result.value.next);
    });
  }, [next, query]);

  const patch = useCallback((id: string, change: Partial<Conversation> | null) => {
    setItems((current) => (change === null ? current.filter((item) => item.id !== id) : current.map((item) => (item.id === id ? { ...item, ...change } : item))));
  }, []);

  return { items, hasMore: next !== undefined, loading, error, query, setQuery, reload, loadMore, patch };
}
