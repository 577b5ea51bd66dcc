/**
 * Accounts and their auth sessions in Redis (see docs/architecture.md "Accounts").
 *
 * An account is a hash under `{a:<id>}`; its auth sessions (browser cookies) and tokens (for
 * programs) live in the same slot, each stored under the SHA-256 of its secret — Redis never
 * holds a secret that would let its reader sign in. A secret names its account
 * (`<accountId>.<43 random chars>`), so checking one is a single script on one slot that also
 * sees at once whether the account is disabled.
 *
 * Indexes (usernames, OpenID identities, the list of accounts) are single keys of their own; the
 * username index is written with SET NX, so two sign-ups cannot take one name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { AuthError, ErrorCodes } from '../contracts/errors.js';
import { accountIndexKeys, accountKeys, isValidAccountId } from '../contracts/keys.js';
import { decoyHash, hashPassword, verifyPassword } from './passwords.js';
import { stringMapSchema } from './replies.js';
import { loadScript, runScript, type ScriptRedis } from './scripts.js';

/** The commands the account store uses. */
export interface AccountStoreRedis extends ScriptRedis {
  get(key: string): Promise<string | null>;
  getDel(key: string): Promise<string | null>;
  set(key: string, value: string, options?: { condition?: 'NX'; expiration?: { type: 'EX'; value: number } }): Promise<string | null>;
  hGet(key: string, field: string): Promise<string | null>;
  hGetAll(key: string): Promise<unknown>;
  hSet(key: string, fields: Record<string, string>): Promise<unknown>;
  zAdd(key: string, member: { score: number; value: string }): Promise<unknown>;
  zRange(key: string, start: number, stop: number): Promise<string[]>;
  zRem(key: string, members: string | string[]): Promise<unknown>;
  unlink(keys: string[]): Promise<unknown>;
  multi(): AccountTransaction;
}

/** The MULTIs that end auth sessions. */
export interface AccountTransaction {
  unlink(keys: string | string[]): AccountTransaction;
  zRem(key: string, members: string | string[]): AccountTransaction;
  exec(): Promise<unknown>;
}

export interface Account {
  readonly id: string;
  readonly username: string;
  readonly displayName: string;
  readonly createdAt: number;
  readonly disabled: boolean;
  /** Signs in with a password. */
  readonly local: boolean;
  /** Issuer of the OpenID Connect identity linked to the account, if any. */
  readonly oidcIssuer: string | undefined;
}

export interface LocalAccountInput {
  readonly username: string;
  readonly password: string;
  readonly displayName?: string | undefined;
}

export type AuthKind = 'cookie' | 'token';

/** A valid auth session or token, as resolved from its secret. */
export interface ResolvedAuth {
  readonly account: Pick<Account, 'id' | 'username' | 'displayName'>;
  readonly kind: AuthKind;
  /** SHA-256 (hex) of the secret: the id under which the session is stored. */
  readonly authSessionId: string;
  /** The session's CSRF token (synchronizer token, see docs/security.md). */
  readonly csrf: string;
}

export interface NewAuth {
  /** What the client keeps: the cookie value, or the token after `parley_`. */
  readonly secret: string;
  readonly authSessionId: string;
  readonly csrf: string;
  /** Expiry (ms since the epoch); undefined for tokens, which last until revoked. */
  readonly expiresAt: number | undefined;
}

export interface AccountStoreOptions {
  readonly prefix: string;
  /** AUTH_SESSION_DAYS: how long a browser's auth session lasts after sign-in. */
  readonly sessionDays: number;
}

/** Letters, digits and . _ - @ + (so an e-mail address works), 3–64, starting with a letter or digit. */
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{2,63}$/;
const DISPLAY_NAME_MAX_CHARS = 100;
const SECRET = /^(a_[A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}$/;
const AUTH_SESSION_ID = /^[0-9a-f]{64}$/;
const INVITE = /^[A-Za-z0-9_-]{22}$/;
const DAY_MS = 24 * 3600 * 1000;

export function isValidUsername(name: unknown): name is string {
  return typeof name === 'string' && USERNAME.test(name);
}

/** A display name: 1–100 characters, no control characters, no lone surrogates. */
export function isValidDisplayName(name: unknown): name is string {
  return typeof name === 'string' && name.trim() !== '' && [...name].length <= DISPLAY_NAME_MAX_CHARS && !/[\p{Cc}\p{Surrogate}]/u.test(name);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const newAccountId = () => `a_${randomBytes(16).toString('base64url').slice(0, 22)}`;

const resolveAuth = loadScript('resolve-auth');
const startAuth = loadScript('start-auth');
const releaseIndex = loadScript('release-index');
const setDisabled = loadScript('set-disabled');

export class AccountStore {
  private readonly index: ReturnType<typeof accountIndexKeys>;

  constructor(
    private readonly redis: AccountStoreRedis,
    private readonly options: AccountStoreOptions,
  ) {
    this.index = accountIndexKeys(options.prefix);
  }

  /** Creates an account that signs in with a password; AuthError username_taken when the name is in use. */
  async createLocal(input: LocalAccountInput): Promise<Account> {
    const password = await this.hashFor(input);
    return this.create(input.username, input.displayName ?? input.username, { password });
  }

  /** Checks the names before the (deliberately slow) hash of the password. */
  private hashFor(input: LocalAccountInput): Promise<string> {
    if (!isValidUsername(input.username)) throw new AuthError(ErrorCodes.invalidUsername, 400);
    if (input.displayName !== undefined && !isValidDisplayName(input.displayName)) throw new AuthError(ErrorCodes.invalidDisplayName, 400);
    return hashPassword(input.password);
  }

  /**
   * Reserves the username (SET NX), then writes the account. `beforeCommit` runs after the name
   * is reserved and may refuse (e.g. an invitation already used): the name is then given back.
   */
  private async create(
    username: string,
    displayName: string,
    fields: Record<string, string>,
    beforeCommit?: () => Promise<void>,
  ): Promise<Account> {
    if (!isValidUsername(username)) throw new AuthError(ErrorCodes.invalidUsername, 400);
    if (!isValidDisplayName(displayName)) throw new AuthError(ErrorCodes.invalidDisplayName, 400);
    const id = newAccountId();
    const nameKey = this.index.username(username.toLowerCase());
    if ((await this.redis.set(nameKey, id, { condition: 'NX' })) === null) throw new AuthError(ErrorCodes.usernameTaken, 409);
    try {
      await beforeCommit?.();
    } catch (error) {
      await runScript(this.redis, releaseIndex, [nameKey], [id]);
      throw error;
    }
    const createdAt = Date.now();
    await this.redis.hSet(accountKeys(this.options.prefix, id).account, { username, displayName, created: String(createdAt), disabled: '0', ...fields });
    await this.redis.zAdd(this.index.accounts, { score: createdAt, value: id });
    return toAccount(id, { username, displayName, created: String(createdAt), disabled: '0', ...fields });
  }

  /** Creates an account with an invitation code, used up only when the account is created. */
  async createLocalWithInvite(input: LocalAccountInput, invite: string): Promise<Account> {
    const password = await this.hashFor(input);
    return this.create(input.username, input.displayName ?? input.username, { password }, async () => {
      if (!(await this.takeInvite(invite))) throw new AuthError(ErrorCodes.invalidInvite, 403);
    });
  }

  /**
   * The account whose username and password these are. Throws AuthError invalid_credentials
   * (unknown name and wrong password alike, in about the same time) or account_disabled.
   */
  async checkPassword(username: string, password: string): Promise<Account> {
    const account = isValidUsername(username) ? await this.findByUsername(username) : null;
    const record = account === null ? undefined : await this.redis.hGet(accountKeys(this.options.prefix, account.id).account, 'password');
    const matches = await verifyPassword(password, record ?? (await decoyHash()));
    if (account === null || record === undefined || record === null || !matches) throw new AuthError(ErrorCodes.invalidCredentials, 401);
    if (account.disabled) throw new AuthError(ErrorCodes.accountDisabled, 403);
    return account;
  }

  async findByUsername(username: string): Promise<Account | null> {
    if (!isValidUsername(username)) return null;
    const id = await this.redis.get(this.index.username(username.toLowerCase()));
    return id === null ? null : this.get(id);
  }

  async get(accountId: string): Promise<Account | null> {
    if (!isValidAccountId(accountId)) return null;
    const fields = stringMapSchema.parse(await this.redis.hGetAll(accountKeys(this.options.prefix, accountId).account));
    return fields.username === undefined ? null : toAccount(accountId, fields);
  }

  /** Every account, oldest first. */
  async list(): Promise<Account[]> {
    const ids = await this.redis.zRange(this.index.accounts, 0, -1);
    const accounts = await Promise.all(ids.map((id) => this.get(id)));
    return accounts.filter((account): account is Account => account !== null);
  }

  /**
   * The account linked to an OpenID identity (issuer, sub); when none is and `create` allows it,
   * a new account named after the provider's claims. Null when none is linked and none may be made.
   */
  async findOrCreateOidc(
    identity: { issuer: string; sub: string },
    profile: { usernames: readonly string[]; displayName: string | undefined },
    mayCreate: () => Promise<boolean>,
  ): Promise<Account | null> {
    const linkKey = this.index.oidc(sha256(`${identity.issuer}\n${identity.sub}`));
    const linked = await this.redis.get(linkKey);
    if (linked !== null) {
      const account = await this.get(linked);
      if (account !== null) return account;
      await runScript(this.redis, releaseIndex, [linkKey], [linked]); // the account was deleted
    }
    if (!(await mayCreate())) return null;
    const candidates = usernameCandidates(profile.usernames);
    for (const username of candidates) {
      const displayName = profile.displayName !== undefined && isValidDisplayName(profile.displayName) ? profile.displayName : username;
      try {
        const account = await this.create(username, displayName, { iss: identity.issuer, sub: identity.sub }, async () => {
          // Two callbacks of one identity at once: the second links to nothing and gives up.
          if ((await this.redis.set(linkKey, 'pending', { condition: 'NX' })) === null) throw new AuthError(ErrorCodes.oidcFailed, 409);
        });
        await this.redis.set(linkKey, account.id);
        return account;
      } catch (error) {
        if (!(error instanceof AuthError && error.code === ErrorCodes.usernameTaken)) throw error;
      }
    }
    throw new AuthError(ErrorCodes.usernameTaken, 409);
  }

  /** Disables or enables an account; disabling ends all its sessions and tokens at once. False: no such account. */
  async setDisabled(accountId: string, disabled: boolean): Promise<boolean> {
    if (!isValidAccountId(accountId)) return false;
    const keys = accountKeys(this.options.prefix, accountId);
    const found = (await runScript(this.redis, setDisabled, [keys.account], [disabled ? '1' : '0'])).reply === 1;
    if (found && disabled) await this.endAllAuths(accountId);
    return found;
  }

  /** Removes the account, its username and OpenID index entries and all its sessions and tokens. */
  async delete(accountId: string): Promise<boolean> {
    if (!isValidAccountId(accountId)) return false;
    const keys = accountKeys(this.options.prefix, accountId);
    const fields = stringMapSchema.parse(await this.redis.hGetAll(keys.account));
    if (fields.username === undefined) return false;
    // Disabled first: from here on no session of it resolves and none can start.
    await this.setDisabled(accountId, true);
    await runScript(this.redis, releaseIndex, [this.index.username(fields.username.toLowerCase())], [accountId]);
    if (fields.iss !== undefined && fields.sub !== undefined) {
      await runScript(this.redis, releaseIndex, [this.index.oidc(sha256(`${fields.iss}\n${fields.sub}`))], [accountId]);
    }
    await this.redis.zRem(this.index.accounts, accountId);
    await this.redis.unlink([keys.account, keys.auths]);
    return true;
  }

  /** Starts an auth session (a browser's cookie) or a token; null when the account is gone or disabled. */
  async startAuth(accountId: string, kind: AuthKind, label = ''): Promise<NewAuth | null> {
    if (!isValidAccountId(accountId)) return null;
    const secret = `${accountId}.${randomBytes(32).toString('base64url')}`;
    const authSessionId = sha256(secret);
    const csrf = randomBytes(32).toString('base64url');
    const now = Date.now();
    const expiresAt = kind === 'cookie' ? now + this.options.sessionDays * DAY_MS : undefined;
    const keys = accountKeys(this.options.prefix, accountId);
    const { reply } = await runScript(
      this.redis,
      startAuth,
      [keys.account, keys.auths, keys.auth(authSessionId)],
      [authSessionId, kind, csrf, String(now), String(expiresAt ?? 0), label],
    );
    return reply === 1 ? { secret, authSessionId, csrf, expiresAt } : null;
  }

  /** The session or token of a secret; null for anything else (malformed, unknown, expired, disabled). */
  async resolve(secret: string): Promise<ResolvedAuth | null> {
    const accountId = SECRET.exec(secret)?.[1];
    if (accountId === undefined) return null;
    return this.lookup(accountId, sha256(secret));
  }

  /** The session or token stored under `authSessionId`, if it is still valid (for a socket that outlives its check). */
  async lookup(accountId: string, authSessionId: string): Promise<ResolvedAuth | null> {
    if (!isValidAccountId(accountId) || !AUTH_SESSION_ID.test(authSessionId)) return null;
    const keys = accountKeys(this.options.prefix, accountId);
    const { reply } = await runScript(this.redis, resolveAuth, [keys.account, keys.auth(authSessionId)], [String(Date.now())]);
    if (!Array.isArray(reply)) return null;
    const [username, displayName, kind, csrf] = reply.map(String);
    if (username === undefined || displayName === undefined || csrf === undefined || (kind !== 'cookie' && kind !== 'token')) return null;
    return { account: { id: accountId, username, displayName }, kind, authSessionId, csrf };
  }

  /** Ends one auth session or token. */
  async endAuth(accountId: string, authSessionId: string): Promise<void> {
    if (!isValidAccountId(accountId) || !AUTH_SESSION_ID.test(authSessionId)) return;
    const keys = accountKeys(this.options.prefix, accountId);
    await this.redis.multi().unlink(keys.auth(authSessionId)).zRem(keys.auths, authSessionId).exec();
  }

  /** Ends every auth session and token of an account ("sign out everywhere"). */
  async endAllAuths(accountId: string): Promise<void> {
    if (!isValidAccountId(accountId)) return;
    const keys = accountKeys(this.options.prefix, accountId);
    const ids = await this.redis.zRange(keys.auths, 0, -1);
    if (ids.length === 0) return;
    // Only these members: a session started meanwhile stays listed (and can be ended in turn).
    await this.redis.multi().unlink(ids.map((id) => keys.auth(id))).zRem(keys.auths, ids).exec();
  }

  /** Keeps the state of an OpenID sign-in in progress under (the hash of) its id, for `seconds`, to be taken once. */
  async saveFlow(flowId: string, state: string, seconds: number): Promise<void> {
    await this.redis.set(this.index.oidcFlow(sha256(flowId)), state, { expiration: { type: 'EX', value: seconds } });
  }

  /** Takes (and removes) the state of a sign-in in progress; null when unknown, expired or taken. */
  async takeFlow(flowId: string): Promise<string | null> {
    if (flowId.length > 100) return null;
    return this.redis.getDel(this.index.oidcFlow(sha256(flowId)));
  }

  /** A new single-use invitation code, valid for `days`. */
  async createInvite(days: number): Promise<string> {
    const code = randomBytes(16).toString('base64url');
    await this.redis.set(this.index.invite(sha256(code)), '1', { expiration: { type: 'EX', value: Math.round(days * 86_400) } });
    return code;
  }

  /** Uses up an invitation; false when it is unknown, expired or used. */
  async takeInvite(code: string): Promise<boolean> {
    if (!INVITE.test(code)) return false;
    return (await this.redis.getDel(this.index.invite(sha256(code)))) !== null;
  }
}

function toAccount(id: string, fields: Record<string, string | undefined>): Account {
  const username = fields.username ?? '';
  return {
    id,
    username,
    displayName: fields.displayName ?? username,
    createdAt: Number(fields.created ?? 0),
    disabled: fields.disabled === '1',
    local: fields.password !== undefined,
    oidcIssuer: fields.iss,
  };
}

/** Usernames to try for a new OpenID account: the provider's names made valid, then numbered, then random. */
function usernameCandidates(names: readonly string[]): string[] {
  const bases = names
    .map((name) => name.normalize('NFKD').replace(/[^A-Za-z0-9._@+-]/g, '').replace(/^[^A-Za-z0-9]+/, '').slice(0, 56))
    .filter((name) => isValidUsername(name));
  const named = bases.length > 0 ? bases : ['user'];
  const base = named[0] ?? 'user';
  return [...new Set([...named, ...[2, 3, 4, 5].map((n) => `${base}-${n}`), `${base}-${randomBytes(4).toString('hex')}`])];
}
