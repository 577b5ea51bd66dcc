/**
 * Who is asking: the person behind a request, from the `parley_auth` cookie (browsers) or an
 * `Authorization: Bearer parley_…` token (programs). Routes that need a person use
 * `identity.requirePerson` as their preHandler and read `request.person`.
 *
 * CSRF: a browser sends the cookie with any request, a forged cross-site one included, so every
 * unsafe request authenticated by the cookie must also carry the auth session's CSRF token in
 * `X-CSRF-Token` — a synchronizer token kept with the auth session in Redis, which another site
 * can neither read nor set. (Why not @fastify/csrf-protection: docs/security.md "CSRF".) A bearer
 * token is never sent by a browser on its own, so it needs none.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes, userErrorText } from '../../contracts/errors.js';
import { withDeadline } from '../../shared/deadline.js';
import type { AccountStore } from '../../store/account-store.js';
import { bearerToken, sameSecret } from '../http-util.js';

export interface Person {
  readonly id: string;
  readonly username: string;
  readonly displayName: string;
}

export interface ResolvedPerson {
  readonly person: Person;
  readonly via: 'cookie' | 'bearer';
  /** SHA-256 of the secret: what sign-out ends. */
  readonly authSessionId: string;
  /** The auth session's CSRF token (what `X-CSRF-Token` must carry). */
  readonly csrf: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in person, set by `requirePerson` (null on routes without it). */
    person: Person | null;
    /** How the person was recognised, set with `person`. */
    auth: ResolvedPerson | null;
  }
}

export const AUTH_COOKIE = 'parley_auth';
/** Account tokens start with this, so they are told apart from conversation tokens (UUIDs). */
export const BEARER_PREFIX = 'parley_';
export const CSRF_HEADER = 'x-csrf-token';
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const NOT_SIGNED_IN = { detail: userErrorText(ErrorCodes.notSignedIn), code: ErrorCodes.notSignedIn } as const;
export const CSRF_REFUSED = { detail: userErrorText(ErrorCodes.csrf), code: ErrorCodes.csrf } as const;

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The account token of `Authorization: Bearer parley_<secret>`, if the request carries one. */
function accountToken(headers: IncomingHttpHeaders): string | undefined {
  return /^parley_(\S+)$/i.exec(bearerToken(headers) ?? '')?.[1];
}

type CookieParser = (header: string) => Record<string, string | undefined>;

export class Identity {
  private constructor(
    private readonly accounts: AccountStore,
    /** Longest a request waits for Redis before it is answered 503. */
    private readonly deadlineMs: number,
    private readonly parseCookie: CookieParser,
  ) {}

  /**
   * Registers @fastify/cookie (reply.setCookie, request.cookies; its parser also reads the cookie
   * of WebSocket upgrades), adds `request.person` and `request.auth`, and returns the identity.
   */
  static async attach(app: FastifyInstance, accounts: AccountStore, deadlineMs: number): Promise<Identity> {
    await app.register(fastifyCookie);
    app.decorateRequest('person', null);
    app.decorateRequest('auth', null);
    // The plugin loads its parser when registered: only then is app.parseCookie usable.
    await app.after();
    return new Identity(accounts, deadlineMs, (header) => app.parseCookie(header));
  }

  private authCookie(headers: IncomingHttpHeaders): string | undefined {
    const header = single(headers.cookie);
    if (header === undefined || header.length > 16 * 1024) return undefined;
    try {
      return this.parseCookie(header)[AUTH_COOKIE];
    } catch {
      return undefined; // a malformed %-escape
    }
  }

  /** The person of a request (HTTP or WebSocket upgrade), or null. A bearer token wins over the cookie. */
  async resolvePerson(headers: IncomingHttpHeaders): Promise<ResolvedPerson | null> {
    const token = accountToken(headers);
    const [secret, via] = token === undefined ? [this.authCookie(headers), 'cookie' as const] : [token, 'bearer' as const];
    if (secret === undefined) return null;
    const resolved = await this.accounts.resolve(secret);
    // A cookie that carries a token (or the reverse) is refused: each is meant for one use.
    if (resolved === null || resolved.kind !== (via === 'cookie' ? 'cookie' : 'token')) return null;
    return { person: resolved.account, via, authSessionId: resolved.authSessionId, csrf: resolved.csrf };
  }

  /**
   * preHandler: answers 401 not_signed_in without a person, 403 csrf for an unsafe request
   * authenticated by the cookie without the right X-CSRF-Token; otherwise sets request.person.
   */
  readonly requirePerson = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const resolved = await withDeadline(this.resolvePerson(request.headers), this.deadlineMs);
    if (resolved === null) {
      await reply.code(401).header('WWW-Authenticate', 'Bearer').send(NOT_SIGNED_IN);
      return;
    }
    if (resolved.via === 'cookie' && UNSAFE_METHODS.has(request.method)) {
      const given = single(request.headers[CSRF_HEADER]);
      if (!sameSecret(given, resolved.csrf)) {
        await reply.code(403).send(CSRF_REFUSED);
        return;
      }
    }
    request.person = resolved.person;
    request.auth = resolved;
  };
}

/** The person requirePerson put on the request (for handlers behind it). */
export function signedIn(request: FastifyRequest): ResolvedPerson {
  if (request.auth === null) throw new Error('route without requirePerson asked for the person');
  return request.auth;
}
