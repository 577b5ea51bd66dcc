/**
 * The two HTTP calls of the protocol: POST /token (new session) and GET /api/v1/session (a
 * session with its history; the token travels in `Authorization`, not in the URL). Responses are
 * checked with the contracts' schemas before use: the UI trusts their shape.
 */
import { ErrorCodes, ParleyError } from '../../../src/contracts/errors.js';
import { invalidNameBodySchema, sessionViewSchema } from '../../../src/contracts/protocol.js';
import { readJson } from './json.js';
import type { SessionView } from './types.js';

/** What to tell the person when a request did not reach the server at all. */
export const NETWORK_DETAIL = 'Could not reach the server. Check your connection and try again.';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export type CreateSessionResult =
  | { readonly ok: true; readonly session: SessionView }
  | { readonly ok: false; readonly reason: 'invalid_name' | 'network' | 'server'; readonly message: string };

export type RefreshResult = { readonly kind: 'ok'; readonly session: SessionView } | { readonly kind: 'expired' };

/** The server could not be reached or answered something unexpected: worth retrying later. */
export class TransientError extends ParleyError {
  constructor(message: string) {
    super(ErrorCodes.unavailable, message);
  }
}

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
        return { ok: false, reason: 'network', message: NETWORK_DETAIL };
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

function invalidNameMessage(body: unknown): string {
  const serverText = invalidNameBodySchema.safeParse(body).data?.detail.msg ?? 'Enter a valid name';
  return `${serverText.replace(/\.$/, '')}: it must not be blank or very long.`;
}

/** Checks the shape of a session (or conversation) body; undefined when it is not one. */
export function toSessionView(body: unknown): SessionView | undefined {
  return sessionViewSchema.safeParse(body).data;
}
