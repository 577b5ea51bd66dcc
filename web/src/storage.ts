/**
 * What the browser remembers: the session token (so a reload returns to the chat), the
 * conversation open, and messages not yet accepted. Storage can be unavailable (privacy modes, quotas): then the app still
 * works, it just forgets on reload.
 */
import type { OutboxEntry, OutboxStore } from './protocol/chat-client.js';

const TOKEN_KEY = 'parley.token';
const CONVERSATION_KEY = 'parley.conversation';
const OUTBOX_PREFIX = 'parley.outbox.';

function read(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch {
    // Nothing to do: the session still works until the page is closed.
  }
}

export function loadToken(): string | undefined {
  return read(TOKEN_KEY) ?? undefined;
}

export function saveToken(token: string | undefined): void {
  write(TOKEN_KEY, token ?? null);
}

/** The conversation a signed-in person had open, so a reload returns to it. */
export function loadOpenConversation(): string | undefined {
  return read(CONVERSATION_KEY) ?? undefined;
}

export function saveOpenConversation(id: string | undefined): void {
  write(CONVERSATION_KEY, id ?? null);
}

function isEntry(value: unknown): value is OutboxEntry {
  if (typeof value !== 'object' || value === null) return false;
  const { clientId, text, intent } = value as Partial<OutboxEntry>;
  const validIntent = intent === undefined || ((intent.kind === 'edit' || intent.kind === 'regenerate') && Number.isInteger(intent.of) && intent.of > 0);
  return typeof clientId === 'string' && typeof text === 'string' && validIntent;
}

export const localOutbox: OutboxStore = {
  load(token) {
    try {
      const parsed: unknown = JSON.parse(read(OUTBOX_PREFIX + token) ?? '[]');
      return Array.isArray(parsed) ? parsed.filter(isEntry) : [];
    } catch {
      return [];
    }
  },
  save(token, entries) {
    write(OUTBOX_PREFIX + token, entries.length === 0 ? null : JSON.stringify(entries));
  },
};
