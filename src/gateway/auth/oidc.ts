/**
 * Sign-in with OpenID Connect (openid-client v6): the authorization code flow with PKCE, state and
 * nonce. `GET /api/v1/auth/oidc/start` keeps the flow's secrets in Redis for ten minutes under a
 * random id that only this browser holds (an HttpOnly cookie scoped to the callback path) and
 * sends the browser to the provider; `GET /api/v1/auth/oidc/callback` takes that state once,
 * exchanges the code, checks the ID token, and signs the person in to the account linked to
 * (issuer, sub) — a new one when sign-up allows it. Failures come back to the web UI as
 * `/?auth_error=<code>`; the detail goes to the log only.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as client from 'openid-client';
import { z } from 'zod';
import type { AuthConfig, OidcConfig } from '../../config/config.js';
import { AuthError, ErrorCodes, type ErrorCode } from '../../contracts/errors.js';
import { safeError, type Logger } from '../../shared/logger.js';
import { withDeadline } from '../../shared/deadline.js';
import type { AccountStore } from '../../store/account-store.js';
import type { GatewayLimits } from '../limits.js';
import { cookieOptions, setAuthCookie, within } from './routes.js';

export interface OidcDependencies {
  readonly accounts: AccountStore;
  readonly auth: AuthConfig;
  readonly limits: GatewayLimits;
  readonly deadlineMs: number;
  readonly logger: Logger;
}

const FLOW_COOKIE = 'parley_oidc';
const FLOW_PATH = '/api/v1/auth/oidc';
const FLOW_SECONDS = 600;
/** How long discovery and the token exchange may take before the sign-in fails. */
const PROVIDER_TIMEOUT_SECONDS = 10;

const flowSchema = z.object({ state: z.string(), nonce: z.string(), verifier: z.string(), invite: z.string().optional() });
const startQuery = z.object({ invite: z.string().max(256).optional() });

/** Plain http to the provider only on this machine (a test or development provider); TLS everywhere else. */
function isLoopback(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
}

const oidcClaims = z.object({
  sub: z.string().min(1).max(255),
  preferred_username: z.string().optional(),
  email: z.string().optional(),
  nickname: z.string().optional(),
  name: z.string().optional(),
});

export class OidcSignIn {
  private configuration: Promise<client.Configuration> | undefined;

  constructor(
    private readonly oidc: OidcConfig,
    private readonly deps: OidcDependencies,
  ) {}

  /** The provider's configuration, discovered on first use (a provider down at start-up does not stop the gateway). */
  private discover(): Promise<client.Configuration> {
    if (this.configuration === undefined) {
      const issuer = new URL(this.oidc.issuer);
      const auth = this.oidc.clientSecret === undefined ? client.None() : client.ClientSecretBasic(this.oidc.clientSecret);
      const found = client.discovery(issuer, this.oidc.clientId, undefined, auth, {
        timeout: PROVIDER_TIMEOUT_SECONDS,
        ...(issuer.protocol === 'http:' && isLoopback(issuer) ? { execute: [client.allowInsecureRequests] } : {}),
      });
      // A failed discovery is tried again by the next sign-in.
      found.catch(() => (this.configuration = undefined));
      this.configuration = found;
    }
    return this.configuration;
  }

  private flowCookieOptions(request: FastifyRequest) {
    return cookieOptions(request, this.deps.auth, FLOW_PATH);
  }

  register(app: FastifyInstance): void {
    app.get('/api/v1/auth/oidc/start', async (request, reply) => {
      reply.header('Cache-Control', 'no-store');
      const { invite } = startQuery.safeParse(request.query).data ?? {};
      await within(this.deps.limits.signinAddress, request.ip, this.deps.deadlineMs, 'Too many sign-in attempts');
      let configuration: client.Configuration;
      try {
        configuration = await this.discover();
      } catch (error) {
        this.deps.logger.warn({ err: safeError(error), issuer: this.oidc.issuer }, 'OpenID provider discovery failed');
        return failed(reply, ErrorCodes.oidcFailed);
      }
      const flow = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier(), ...(invite === undefined ? {} : { invite }) };
      const flowId = randomBytes(32).toString('base64url');
      await withDeadline(this.deps.accounts.saveFlow(flowId, JSON.stringify(flow), FLOW_SECONDS), this.deps.deadlineMs);
      reply.setCookie(FLOW_COOKIE, flowId, { ...this.flowCookieOptions(request), maxAge: FLOW_SECONDS });
      const target = client.buildAuthorizationUrl(configuration, {
        redirect_uri: this.oidc.redirectUrl,
        scope: this.oidc.scopes,
        state: flow.state,
        nonce: flow.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
        code_challenge_method: 'S256',
      });
      return reply.redirect(target.href, 302);
    });

    app.get('/api/v1/auth/oidc/callback', async (request, reply) => {
      reply.header('Cache-Control', 'no-store');
      const flowId = request.cookies[FLOW_COOKIE];
      reply.clearCookie(FLOW_COOKIE, this.flowCookieOptions(request));
      const stored = flowId === undefined ? null : await withDeadline(this.deps.accounts.takeFlow(flowId), this.deps.deadlineMs);
      const flow = stored === null ? undefined : flowSchema.safeParse(parseJson(stored)).data;
      if (flow === undefined) return failed(reply, ErrorCodes.oidcFailed);
      try {
        const account = await this.finish(request, flow);
        const started = await withDeadline(this.deps.accounts.startAuth(account.id, 'cookie'), this.deps.deadlineMs);
        if (started === null) return failed(reply, ErrorCodes.accountDisabled);
        setAuthCookie(request, reply, started, this.deps.auth);
        return reply.redirect('/', 302);
      } catch (error) {
        if (error instanceof AuthError) return failed(reply, error.code);
        this.deps.logger.warn({ err: safeError(error) }, 'OpenID sign-in failed');
        return failed(reply, ErrorCodes.oidcFailed);
      }
    });
  }

  /** Exchanges the code (checking state, nonce and PKCE) and finds or makes the account. */
  private async finish(request: FastifyRequest, flow: z.infer<typeof flowSchema>) {
    const configuration = await this.discover();
    // The URL the provider sent the browser to: our configured redirect URL with the query it added
    // (not rebuilt from the Host header, which the client controls).
    const current = new URL(this.oidc.redirectUrl);
    const query = request.url.indexOf('?');
    current.search = query === -1 ? '' : request.url.slice(query);
    const tokens = await client.authorizationCodeGrant(configuration, current, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const idToken = oidcClaims.safeParse(tokens.claims());
    if (!idToken.success) throw new AuthError(ErrorCodes.oidcFailed, 400);
    const { sub } = idToken.data;
    // Some providers put the profile in the ID token (Google, Keycloak), others only at userinfo.
    const named = [idToken.data.preferred_username, idToken.data.email, idToken.data.name].some((claim) => claim !== undefined);
    const profile =
      named || configuration.serverMetadata().userinfo_endpoint === undefined
        ? idToken.data
        : { ...idToken.data, ...oidcClaims.partial().parse(await client.fetchUserInfo(configuration, tokens.access_token, sub)) };
    const { preferred_username, email, nickname, name } = profile;
    const issuer = configuration.serverMetadata().issuer;
    const { signup } = this.deps.auth;
    const mayCreate = async () => signup === 'open' || (signup === 'invite' && flow.invite !== undefined && (await this.deps.accounts.takeInvite(flow.invite)));
    const account = await withDeadline(
      this.deps.accounts.findOrCreateOidc({ issuer, sub }, { usernames: [preferred_username, email, nickname, name].filter((item): item is string => item !== undefined), displayName: name }, mayCreate),
      this.deps.deadlineMs,
    );
    if (account === null) throw new AuthError(signup === 'invite' ? ErrorCodes.invalidInvite : ErrorCodes.signupClosed, 403);
    if (account.disabled) throw new AuthError(ErrorCodes.accountDisabled, 403);
    return account;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Back to the web UI, which shows the code's text. */
function failed(reply: FastifyReply, code: ErrorCode) {
  return reply.redirect(`/?auth_error=${encodeURIComponent(code)}`, 302);
}

/** Registers the OpenID routes when configured; otherwise both answer 404 oidc_off. */
export function registerOidcRoutes(app: FastifyInstance, deps: OidcDependencies): void {
  const { oidc } = deps.auth;
  if (oidc !== undefined) {
    new OidcSignIn(oidc, deps).register(app);
    return;
  }
  const off = async () => {
    throw new AuthError(ErrorCodes.oidcOff, 404);
  };
  app.get('/api/v1/auth/oidc/start', off);
  app.get('/api/v1/auth/oidc/callback', off);
}
