/**
 * The signed-in person's HTTP API: sign-in and sign-up, the account, and their conversations
 * (docs/protocol.md, "Accounts" and "Conversations"). The auth cookie rides along on its own;
 * unsafe requests carry the CSRF token from the last sign-in or `GET /api/v1/auth/me`. Every
 * answer is checked before use; failures carry the server's `detail` for the person to read.
 */
import { ErrorCodes, userErrorText, type ErrorCode } from '../../../src/contracts/errors.js';
import { isRecord, readJson } from './json.js';
import { NETWORK_DETAIL, toSessionView, TransientError, type FetchLike, type RefreshResult } from './session-api.js';

export interface Person {
  readonly id: string;
  readonly username: string;
  readonly displayName: string;
}

export type SignupMode = 'open' | 'invite' | 'closed';

export interface AuthConfig {
  /** "Just start chatting" without an account. */
  readonly anonymous: boolean;
  readonly signup: SignupMode;
  /** Sign-in with a user name and password. */
  readonly local: boolean;
  /** The OpenID Connect provider's button text, when one is configured. */
  readonly oidc: { readonly label: string } | null;
}

/** A server without accounts (or unreachable for a moment) still offers the anonymous chat. */
export const ANONYMOUS_ONLY: AuthConfig = { anonymous: true, signup: 'closed', local: false, oidc: null };

/** The server offers accounts at all: some way to sign in is configured. */
export function hasAccounts(config: AuthConfig): boolean {
  return config.local || config.oidc !== null;
}

export interface Conversation {
  readonly id: string;
  readonly title: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ConversationPage {
  readonly conversations: readonly Conversation[];
  /** Pass as `before` for the next (older) page; absent on the last one. */
  readonly next?: string;
}

export interface ApiFailure {
  readonly ok: false;
  /** 0: the server could not be reached. */
  readonly status: number;
  readonly code: string;
  /** What to tell the person (the server's `detail`, or a text of ours when it sent none). */
  readonly detail: string;
}

export type ApiResult<T> = { readonly ok: true; readonly value: T } | ApiFailure;

export interface SignUpInput {
  readonly username: string;
  readonly password: string;
  readonly displayName?: string;
  readonly invite?: string;
}

export type ExportFormat = 'markdown' | 'json';

export const OIDC_START_URL = '/api/v1/auth/oidc/start';
export const EXPORT_ALL_URL = '/api/v1/me/export';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface AccountApi {
  config(): Promise<AuthConfig>;
  /** The person of this browser's session; `null` when nobody is signed in. */
  me(): Promise<ApiResult<Person | null>>;
  signUp(input: SignUpInput): Promise<ApiResult<Person>>;
  signIn(username: string, password: string): Promise<ApiResult<Person>>;
  signOut(): Promise<ApiResult<null>>;
  signOutEverywhere(): Promise<ApiResult<null>>;
  deleteAccount(): Promise<ApiResult<null>>;
  listConversations(query?: { q?: string; before?: string }): Promise<ApiResult<ConversationPage>>;
  createConversation(title?: string): Promise<ApiResult<Conversation>>;
  renameConversation(id: string, title: string): Promise<ApiResult<null>>;
  deleteConversation(id: string): Promise<ApiResult<null>>;
  /** A conversation with its history, in the shape the chat client loads (gone = `expired`). */
  loadConversation(id: string): Promise<RefreshResult>;
  exportUrl(id: string, format: ExportFormat): string;
  /** Called when the server says nobody is signed in any more (signed out elsewhere, account deleted). */
  onSignedOut(listener: () => void): () => void;
}

type Raw = { readonly ok: true; readonly status: number; readonly body: unknown } | ApiFailure;

export function createAccountApi(fetchFn: FetchLike, baseUrl = ''): AccountApi {
  let csrf: string | undefined;
  const signedOutListeners = new Set<() => void>();

  async function send(method: string, path: string, body?: unknown): Promise<Raw> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (UNSAFE.has(method) && csrf !== undefined) headers['x-csrf-token'] = csrf;
    let response: Response;
    try {
      response = await fetchFn(`${baseUrl}${path}`, {
        method,
        headers,
        cache: 'no-store',
        credentials: 'same-origin',
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      return { ok: false, status: 0, code: 'network', detail: NETWORK_DETAIL };
    }
    const json = await readJson(response);
    if (response.ok) return { ok: true, status: response.status, body: json };
    return failure(response.status, json);
  }

  /** One request; a stale CSRF token (another tab signed in again) is renewed once. */
  async function call(method: string, path: string, body?: unknown): Promise<Raw> {
    let result = await send(method, path, body);
    if (!result.ok && result.status === 403 && result.code === 'csrf' && (await renewCsrf())) result = await send(method, path, body);
    if (!result.ok && result.status === 401 && !path.startsWith('/api/v1/auth/')) {
      csrf = undefined;
      for (const listener of signedOutListeners) listener();
    }
    return result;
  }

  async function renewCsrf(): Promise<boolean> {
    const result = await me();
    return result.ok && result.value !== null;
  }

  /** Reads `{person, csrf}` and keeps the token for the requests that follow. */
  function adoptSignIn(raw: Raw): ApiResult<Person> {
    if (!raw.ok) return raw;
    const body = isRecord(raw.body) ? raw.body : {};
    const person = toPerson(body.person);
    if (person === undefined) return unexpected(raw.status);
    if (typeof body.csrf === 'string') csrf = body.csrf;
    return { ok: true, value: person };
  }

  async function me(): Promise<ApiResult<Person | null>> {
    const raw = await send('GET', '/api/v1/auth/me');
    if (!raw.ok && raw.status === 401) {
      csrf = undefined;
      return { ok: true, value: null };
    }
    return adoptSignIn(raw);
  }

  /** Ends the session (sign-out, sign-out everywhere, account deletion): the CSRF token goes with it. */
  async function signOutWith(method: string, path: string): Promise<ApiResult<null>> {
    const result = noBody(await call(method, path));
    if (result.ok) csrf = undefined;
    return result;
  }

  const conversationPath = (id: string) => `/api/v1/conversations/${encodeURIComponent(id)}`;

  return {
    async config() {
      const raw = await send('GET', '/api/v1/auth/config');
      return raw.ok ? toAuthConfig(raw.body) : ANONYMOUS_ONLY;
    },
    me,
    async signUp(input) {
      const body: Record<string, string> = { username: input.username, password: input.password };
      if (input.displayName !== undefined && input.displayName.trim() !== '') body.displayName = input.displayName;
      if (input.invite !== undefined && input.invite.trim() !== '') body.invite = input.invite.trim();
      return adoptSignIn(await send('POST', '/api/v1/auth/signup', body));
    },
    async signIn(username, password) {
      return adoptSignIn(await send('POST', '/api/v1/auth/signin', { username, password }));
    },
    signOut: () => signOutWith('POST', '/api/v1/auth/signout'),
    signOutEverywhere: () => signOutWith('POST', '/api/v1/auth/signout-all'),
    deleteAccount: () => signOutWith('DELETE', '/api/v1/me'),
    async listConversations(query = {}) {
      const params = new URLSearchParams();
      if (query.q !== undefined && query.q.trim() !== '') params.set('q', query.q.trim());
      if (query.before !== undefined) params.set('before', query.before);
      const search = params.size === 0 ? '' : `?${params.toString()}`;
      const raw = await call('GET', `/api/v1/conversations${search}`);
      if (!raw.ok) return raw;
      const page = toConversationPage(raw.body);
      return page === undefined ? unexpected(raw.status) : { ok: true, value: page };
    },
    async createConversation(title) {
      const raw = await call('POST', '/api/v1/conversations', title === undefined ? {} : { title });
      if (!raw.ok) return raw;
      const conversation = toConversation(raw.body);
      return conversation === undefined ? unexpected(raw.status) : { ok: true, value: conversation };
    },
    async renameConversation(id, title) {
      return noBody(await call('PATCH', conversationPath(id), { title }));
    },
    async deleteConversation(id) {
      return noBody(await call('DELETE', conversationPath(id)));
    },
    async loadConversation(id) {
      const raw = await call('GET', conversationPath(id));
      // Gone, never ours, or signed out: this conversation cannot be shown any more.
      if (!raw.ok && [400, 401, 403, 404].includes(raw.status)) return { kind: 'expired' };
      if (!raw.ok) throw new TransientError(`the conversation API answered ${raw.status}: ${raw.detail}`);
      const session = toSessionView(raw.body);
      if (session === undefined) throw new TransientError('the conversation API answered an unexpected body');
      return { kind: 'ok', session };
    },
    exportUrl(id, format) {
      return `${baseUrl}${conversationPath(id)}/export?format=${format}`;
    },
    onSignedOut(listener) {
      signedOutListeners.add(listener);
      return () => signedOutListeners.delete(listener);
    },
  };
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

/**
 * Why a sign-in with the OpenID Connect provider failed: the gateway's callback redirects to
 * `/?auth_error=<code>`. Only known codes are shown (a crafted link cannot put text on the page).
 */
export function authErrorNotice(search: string): string | undefined {
  const code = new URLSearchParams(search).get('auth_error');
  if (code === null) return undefined;
  return KNOWN_CODES.has(code) ? userErrorText(code as ErrorCode) : userErrorText(ErrorCodes.oidcFailed);
}

function failure(status: number, body: unknown): ApiFailure {
  const record = isRecord(body) ? body : {};
  const code = typeof record.code === 'string' ? record.code : `http_${status}`;
  const detail = typeof record.detail === 'string' && record.detail.trim() !== '' ? record.detail : fallbackDetail(status);
  return { ok: false, status, code, detail };
}

function fallbackDetail(status: number): string {
  if (status === 429) return 'Too many attempts: wait a moment and try again.';
  if (status >= 500) return `The server could not do this right now (HTTP ${status}). Try again in a moment.`;
  return `The server refused this (HTTP ${status}).`;
}

function unexpected(status: number): ApiFailure {
  return { ok: false, status, code: 'unexpected', detail: 'The server answered something unexpected. Try again in a moment.' };
}

function noBody(raw: Raw): ApiResult<null> {
  return raw.ok ? { ok: true, value: null } : raw;
}

function toPerson(value: unknown): Person | undefined {
  if (!isRecord(value) || typeof value.id !== 'string' || typeof value.username !== 'string') return undefined;
  const displayName = typeof value.displayName === 'string' && value.displayName.trim() !== '' ? value.displayName : value.username;
  return { id: value.id, username: value.username, displayName };
}

export function toAuthConfig(body: unknown): AuthConfig {
  if (!isRecord(body)) return ANONYMOUS_ONLY;
  const signup = body.signup === 'open' || body.signup === 'invite' ? body.signup : 'closed';
  const oidc = isRecord(body.oidc) && typeof body.oidc.label === 'string' && body.oidc.label.trim() !== '' ? { label: body.oidc.label } : null;
  return { anonymous: body.anonymous !== false, signup, local: body.local === true, oidc };
}

function toConversation(value: unknown): Conversation | undefined {
  if (!isRecord(value) || typeof value.id !== 'string' || value.id === '') return undefined;
  return { id: value.id, title: typeof value.title === 'string' ? value.title : '', createdAt: isoTime(value.createdAt), updatedAt: isoTime(value.updatedAt) };
}

/** A time as ISO text; the server may send ISO text or milliseconds since the epoch. '' when neither. */
function isoTime(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? '' : date.toISOString();
  }
  return '';
}

export function toConversationPage(body: unknown): ConversationPage | undefined {
  if (!isRecord(body) || !Array.isArray(body.conversations)) return undefined;
  const conversations = (body.conversations as unknown[]).map(toConversation).filter((item): item is Conversation => item !== undefined);
  const next = typeof body.next === 'number' ? String(body.next) : body.next;
  return typeof next === 'string' && next !== '' ? { conversations, next } : { conversations };
}
