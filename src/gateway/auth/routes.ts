/**
 * The people API under /api/v1/auth: configuration, local sign-up and sign-in, tokens for
 * programs, who am I, sign-out (here and everywhere). OpenID Connect has its own module (oidc.ts).
 * Refusals are AuthErrors, answered by the gateway's error handler as {"detail", "code"}.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuthConfig } from '../../config/config.js';
import { AuthError, ErrorCodes } from '../../contracts/errors.js';
import { withDeadline } from '../../shared/deadline.js';
import type { AccountStore, NewAuth } from '../../store/account-store.js';
import { isAcceptablePassword } from '../../store/passwords.js';
import type { GatewayLimits, Limit } from '../limits.js';
import { noStore } from '../http-util.js';
import { AUTH_COOKIE, BEARER_PREFIX, signedIn, type Identity, type Person } from './identity.js';

export interface AuthRouteDependencies {
  readonly accounts: AccountStore;
  readonly identity: Identity;
  readonly auth: AuthConfig;
  readonly limits: GatewayLimits;
  readonly deadlineMs: number;
}

const text = (max: number) => z.string().max(max);
const signupBody = z.object({
  username: text(256),
  password: text(4096),
  displayName: text(1024).optional(),
  invite: text(256).optional(),
});
const signinBody = z.object({ username: text(256), password: text(4096) });
const tokenBody = z.object({ label: text(100).optional() }).nullish();

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new AuthError(ErrorCodes.invalidRequest, 400);
  return parsed.data;
}

/** Throws AuthError rate_limited (429) when `limit` refuses `key`. */
export async function within(limit: Limit, key: string, deadlineMs: number, what: string): Promise<void> {
  const waitMs = await withDeadline(limit.take(key), deadlineMs);
  if (waitMs !== null) throw new AuthError(ErrorCodes.rateLimited, 429, `${what}: try again in ${Math.ceil(waitMs / 1000)} s`, waitMs);
}

export const toPerson = (account: Person): Person => ({ id: account.id, username: account.username, displayName: account.displayName });

/** Every cookie Parley sets: HttpOnly, SameSite=Lax, Secure over https (or with AUTH_COOKIE_SECURE). */
export function cookieOptions(request: FastifyRequest, config: AuthConfig, path = '/') {
  return { httpOnly: true, sameSite: 'lax' as const, path, secure: config.cookieSecure || request.protocol === 'https' };
}

/** Sets the auth cookie (Path=/), until the auth session expires. */
export function setAuthCookie(request: FastifyRequest, reply: FastifyReply, auth: NewAuth, config: AuthConfig): void {
  reply.setCookie(AUTH_COOKIE, auth.secret, {
    ...cookieOptions(request, config),
    ...(auth.expiresAt === undefined ? {} : { expires: new Date(auth.expiresAt) }),
  });
}

export function clearAuthCookie(request: FastifyRequest, reply: FastifyReply, config: AuthConfig): void {
  reply.clearCookie(AUTH_COOKIE, cookieOptions(request, config));
}

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRouteDependencies): void {
  const { accounts, identity, auth: config, limits, deadlineMs } = deps;
  const signedInOnly = { onSend: noStore, preHandler: identity.requirePerson };
  const deadline = <T>(work: Promise<T>) => withDeadline(work, deadlineMs);

  const startCookieSession = async (request: FastifyRequest, reply: FastifyReply, person: Person) => {
    const started = await deadline(accounts.startAuth(person.id, 'cookie'));
    if (started === null) throw new AuthError(ErrorCodes.accountDisabled, 403);
    setAuthCookie(request, reply, started, config);
    return { person: toPerson(person), csrf: started.csrf };
  };

  app.get('/api/v1/auth/config', { onSend: noStore }, async () => ({
    anonymous: config.anonymous,
    signup: config.signup,
    local: config.local,
    oidc: config.oidc === undefined ? null : { label: config.oidc.label },
  }));

  app.post('/api/v1/auth/signup', { onSend: noStore }, async (request, reply) => {
    if (!config.local) throw new AuthError(ErrorCodes.localAccountsOff, 403);
    if (config.signup === 'closed') throw new AuthError(ErrorCodes.signupClosed, 403);
    const body = parse(signupBody, request.body);
    await within(limits.signups, request.ip, deadlineMs, 'Too many new accounts from your address');
    if (!isAcceptablePassword(body.password)) throw new AuthError(ErrorCodes.invalidPassword, 400);
    const input = { username: body.username, password: body.password, displayName: body.displayName };
    let account;
    if (config.signup === 'invite') {
      if (body.invite === undefined) throw new AuthError(ErrorCodes.invalidInvite, 403);
      account = await deadline(accounts.createLocalWithInvite(input, body.invite));
    } else account = await deadline(accounts.createLocal(input));
    return reply.code(201).send(await startCookieSession(request, reply, account));
  });

  app.post('/api/v1/auth/signin', { onSend: noStore }, async (request, reply) => {
    if (!config.local) throw new AuthError(ErrorCodes.localAccountsOff, 403);
    const body = parse(signinBody, request.body);
    const name = body.username.toLowerCase();
    const tooMany = 'Too many sign-in attempts';
    await within(limits.signinAddress, request.ip, deadlineMs, tooMany);
    await within(limits.signin, `${request.ip}|${name}`, deadlineMs, tooMany);
    await within(limits.signinAccount, name, deadlineMs, tooMany);
    // An over-long password is no password of anyone's; refused without hashing 4 KiB.
    if (!isAcceptablePassword(body.password)) throw new AuthError(ErrorCodes.invalidCredentials, 401);
    const account = await deadline(accounts.checkPassword(body.username, body.password));
    return reply.code(200).send(await startCookieSession(request, reply, account));
  });

  app.get('/api/v1/auth/me', signedInOnly, async (request) => {
    const { person, csrf } = signedIn(request);
    return { person: toPerson(person), csrf };
  });

  app.post('/api/v1/auth/tokens', signedInOnly, async (request, reply) => {
    const body = parse(tokenBody, request.body);
    const label = body?.label ?? '';
    if (/[\p{Cc}\p{Surrogate}]/u.test(label)) throw new AuthError(ErrorCodes.invalidRequest, 400);
    const started = await deadline(accounts.startAuth(signedIn(request).person.id, 'token', label));
    if (started === null) throw new AuthError(ErrorCodes.accountDisabled, 403);
    return reply.code(201).send({ token: `${BEARER_PREFIX}${started.secret}` });
  });

  app.post('/api/v1/auth/signout', signedInOnly, async (request, reply) => {
    const { person, authSessionId } = signedIn(request);
    await deadline(accounts.endAuth(person.id, authSessionId));
    clearAuthCookie(request, reply, config);
    return reply.code(204).send();
  });

  app.post('/api/v1/auth/signout-all', signedInOnly, async (request, reply) => {
    await deadline(accounts.endAllAuths(signedIn(request).person.id));
    clearAuthCookie(request, reply, config);
    return reply.code(204).send();
  });
}
