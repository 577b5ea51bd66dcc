/**
 * The two HTTP calls of the protocol: POST /token (new session) and GET /api/v1/session (a
 * session with its history; the token travels in `Authorization`, not in the URL). Responses are checked before use: the UI trusts their shape.
 */
import { isEventIdShaped } from '../../../src/contracts/event-ids.js';
import type { ErrorCode, SessionView } from './types.js';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export type CreateSessionResult =
  | { readonly ok: true; readonly session: SessionView }
  | { readonly ok: false; readonly reason: 'invalid_name' | 'network' | 'server'; readonly message: string };

export type RefreshResult = { readonly kind: 'ok'; readonly session: SessionView } | { readonly kind: 'expired' };

/** The server could not be reached or answered something unexpected: worth retrying later. */
export class TransientError extends Error {}

export interface SessionApi {
  create(name: string): Promise<CreateSessionResult>;
  /** Throws TransientError when the answer says nothing about the session (network, 5xx). */
  refresh(token: string): Promise<RefreshResult>;
}

export function createSessionApi(fetchFn: FetchLike, baseUrl = ''): SessionApi {
  return {
    async create(name) {
      let response: Response;
      try {
        response = await fetchFn(`${baseUrl}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name }),
        });
      } catch {
        return { ok: false, reason: 'network', message: 'Could not reach the server. Check your connection and try again.' };
      }
      if (response.status === 400) {
        return { ok: false, reason: 'invalid_name', message: invalidNameMessage(await readJson(response)) };
      }
      const session = response.ok ? toSessionView(await readJson(response)) : undefined;
      if (session === undefined) {
        return { ok: false, reason: 'server', message: `The server could not start a chat (HTTP ${response.status}). Try again in a moment.` };
      }
      return { ok: true, session };
    },

    async refresh(token) {
      let response: Response;
      try {
        response = await fetchFn(`${baseUrl}/api/v1/session`, { cache: 'no-store', headers: { authorization: `Bearer ${token}` } });
      } catch (error) {
        throw new TransientError(`network: ${String(error)}`);
      }
      // Only a 400 means "this session is gone"; a 5xx or a proxy error page says nothing about it.
      if (response.status === 400) return { kind: 'expired' };
      const session = response.ok ? toSessionView(await readJson(response)) : undefined;
      if (session === undefined) throw new TransientError(`the session API answered HTTP ${response.status}`);
      return { kind: 'ok', session };
    },
  };
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return (await response.json()) as unknown;
  } catch {
    return undefined;
  }
}

function invalidNameMessage(body: unknown): string {
  const detail = isRecord(body) ? body.detail : undefined;
  const serverText = isRecord(detail) && typeof detail.msg === 'string' ? detail.msg : 'Enter a valid name';
  return `${serverText.replace(/\.$/, '')}: it must not be blank or very long.`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

type HistoryMessage = SessionView['messages'][number];

function toMessage(value: unknown): HistoryMessage | undefined {
  if (!isRecord(value)) return undefined;
  const { id, msg, timestamp, source, seq, status, error } = value;
  if (typeof id !== 'string' || typeof msg !== 'string' || (source !== 'human' && source !== 'bot')) return undefined;
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1) return undefined;
  const message: HistoryMessage = { id, msg, timestamp: typeof timestamp === 'string' ? timestamp : '', source, seq };
  if (status === 'done' || status === 'stopped') message.status = status;
  if (isRecord(error) && typeof error.code === 'string' && typeof error.message === 'string') {
    message.error = { code: error.code as ErrorCode, message: error.message, ...(typeof error.ref === 'string' ? { ref: error.ref } : {}) };
  }
  return message;
}

/** Checks the shape of a session body; undefined when it is not one. */
export function toSessionView(body: unknown): SessionView | undefined {
  if (!isRecord(body) || typeof body.token !== 'string' || typeof body.name !== 'string') return undefined;
  const rawMessages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  const messages = rawMessages.map(toMessage).filter((message): message is HistoryMessage => message !== undefined);
  return {
    token: body.token,
    name: body.name,
    session_start: typeof body.session_start === 'string' ? body.session_start : '',
    messages,
    last_event_id: isEventIdShaped(body.last_event_id) ? body.last_event_id : '0',
    head: typeof body.head === 'number' && Number.isInteger(body.head) && body.head >= 0 ? body.head : (messages.at(-1)?.seq ?? 0),
  };
}
