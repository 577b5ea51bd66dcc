/**
 * Every Redis key Parley uses. All keys of one session carry the hash tag `{<token>}` so that
 * scripts and MULTI over them stay inside one slot on Redis Cluster.
 */
const TOKEN_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Only a canonical lowercase UUID v4 may ever become part of a key (fixes keys-as-tokens). */
export function isValidToken(token: unknown): token is string {
  return typeof token === 'string' && TOKEN_PATTERN.test(token);
}

export interface SessionKeys {
  /** Hash: name, start, seq (last accepted), answered (last answered), last (last event id). */
  readonly session: string;
  /** List of JSON message records, in commit order. */
  readonly messages: string;
  /** Stream of answer events (start/delta/done/stopped/error), capped, with TTL. */
  readonly events: string;
  /** Hash: clientId -> seq, so a resent message is accepted once. */
  readonly dedupe: string;
  /** Hash: seq -> JSON error record for turns that failed. */
  readonly errors: string;
  /** String: the worker that currently drains this session (SET NX PX). */
  readonly lease: string;
  /** String: the turn seq whose answer the user asked to stop. */
  readonly cancel: string;
  /** Pub/sub channel: new events of this session (payload = the event). */
  readonly live: string;
  /** Sorted set: open sockets of this session (member = socket id, score = last seen, ms). */
  readonly sockets: string;
}

export function sessionKeys(prefix: string, token: string): SessionKeys {
  const base = `${prefix}{${token}}:`;
  return {
    session: `${base}session`,
    messages: `${base}messages`,
    events: `${base}events`,
    dedupe: `${base}dedupe`,
    errors: `${base}errors`,
    lease: `${base}lease`,
    cancel: `${base}cancel`,
    live: `${base}live`,
    sockets: `${base}sockets`,
  };
}

/** One person's list of conversations; like every key of an account, in the hash tag `{a:<id>}`. */
export interface ConversationIndexKeys {
  /** Sorted set: conversation id (its session token) -> time of its newest message (ms). */
  readonly index: string;
  /** Hash: conversation id -> title (absent until set by the person or from the first message). */
  readonly titles: string;
}

export function conversationIndexKeys(prefix: string, accountId: string): ConversationIndexKeys {
  if (!isValidAccountId(accountId)) throw new Error('not an account id');
  const base = `${prefix}{a:${accountId}}:`;
  return { index: `${base}conversations`, titles: `${base}titles` };
}

export interface GlobalKeys {
  /** Stream: one entry per accepted message (a nudge naming the session). */
  readonly queue: string;
  /**
   * Sorted set: sessions that may have unanswered turns, scored by the time (ms) of their last
   * accepted message. A worker's sweep finds among the older ones those nobody is answering.
   */
  readonly unanswered: string;
  /** Consumer group of all workers on the queue. */
  readonly group: string;
  /** Pub/sub channel: "<token> <seq>" whenever a user stops an answer. */
  readonly cancelChannel: string;
  /** Key pattern that matches every key of every session, and no account's (for operations and tests). */
  readonly sessionPattern: string;
  /** Hash: worker consumer name -> its capacity report (JSON, workerCapacitySchema). */
  readonly capacity: string;
  /** Sorted set per client address: drains answering its sessions (member = drain, score = expiry). */
  addressSlots(address: string): string;
}

export function globalKeys(prefix: string): GlobalKeys {
  return {
    queue: `${prefix}queue`,
    unanswered: `${prefix}unanswered`,
    group: `${prefix}workers`,
    cancelChannel: `${prefix}cancel`,
    sessionPattern: `${prefix}{????????-????-????-????-????????????}:*`,
    capacity: `${prefix}capacity`,
    addressSlots: (address) => `${prefix}addr:${address}`,
  };
}

/**
 * One partition of the work queue: its stream, the unanswered notes of its sessions and the cancel
 * channel of its sessions. On a Redis Cluster one stream would put every wake-up of every session
 * on one node; partitions with hash tags of their own (`{p0}`, `{p1}`, …) spread the queue over
 * the slots, hence the nodes. The tag follows the name (`queue:{p0}`), so the session key pattern
 * `<prefix>{*}:*` never matches a partition key. One partition keeps the unpartitioned names
 * (those of globalKeys), so a single Redis needs no migration.
 */
export interface QueuePartition {
  readonly index: number;
  /** Stream: one entry per accepted message of the partition's sessions. */
  readonly queue: string;
  /** Sorted set: GlobalKeys.unanswered, for the partition's sessions only. */
  readonly unanswered: string;
  /** Pub/sub channel: "<token> <seq>" whenever a user stops an answer of the partition's sessions. */
  readonly cancelChannel: string;
}

export function queuePartitions(prefix: string, count: number): QueuePartition[] {
  if (count === 1) {
    const { queue, unanswered, cancelChannel } = globalKeys(prefix);
    return [{ index: 0, queue, unanswered, cancelChannel }];
  }
  return Array.from({ length: count }, (_, index) => ({
    index,
    queue: `${prefix}queue:{p${index}}`,
    unanswered: `${prefix}unanswered:{p${index}}`,
    cancelChannel: `${prefix}cancel:{p${index}}`,
  }));
}

/**
 * The partition of a session: always the same one, so all wake-ups of a session travel one stream
 * in order. A token's first eight hex digits are random (UUID v4), hence evenly spread.
 */
export function partitionOf(token: string, count: number): number {
  return Number.parseInt(token.slice(0, 8), 16) % count;
}

/** The queue partition of a session, out of all of them (from queuePartitions). */
export function sessionPartition(partitions: readonly QueuePartition[], token: string): QueuePartition {
  const partition = partitions[partitionOf(token, partitions.length)];
  if (partition === undefined) throw new Error('no queue partitions configured');
  return partition;
}

/**
 * Accounts. Their ids are `a_` + 22 url-safe characters (128 random bits); only an id that matches
 * this pattern ever becomes part of a key.
 */
const ACCOUNT_ID_PATTERN = /^a_[A-Za-z0-9_-]{22}$/;

export function isValidAccountId(id: unknown): id is string {
  return typeof id === 'string' && ACCOUNT_ID_PATTERN.test(id);
}

/** Keys of one account; all carry the hash tag `{a:<accountId>}`, so one account is one slot. */
export interface AccountKeys {
  /** Hash: username, displayName, created, disabled ("1"), password (scrypt record), iss, sub. */
  readonly account: string;
  /** Sorted set: the account's auth sessions and tokens (member = SHA-256 of the secret, score = expiry ms, +inf for tokens). */
  readonly auths: string;
  /** Hash of one auth session or token, under the SHA-256 (hex) of its secret: kind, csrf, created, expires, label. */
  auth(secretHash: string): string;
}

export function accountKeys(prefix: string, accountId: string): AccountKeys {
  const base = `${prefix}{a:${accountId}}:`;
  return { account: `${base}account`, auths: `${base}auths`, auth: (secretHash) => `${base}auth:${secretHash}` };
}

/** Keys shared by all accounts (each in its own slot: they are single-key operations). */
export interface AccountIndexKeys {
  /** Sorted set: every account id, scored by creation time (ms). */
  readonly accounts: string;
  /** String: account id of a (lowercase) username; SET NX makes names unique. */
  username(lowercaseName: string): string;
  /** String: account id linked to an OpenID Connect identity, under SHA-256(issuer + "\n" + sub). */
  oidc(identityHash: string): string;
  /** String (with TTL): an unused invitation, under the SHA-256 of its code. */
  invite(codeHash: string): string;
  /** String (with TTL, used once): an OpenID Connect sign-in in progress, under the SHA-256 of its id. */
  oidcFlow(flowHash: string): string;
}

export function accountIndexKeys(prefix: string): AccountIndexKeys {
  return {
    accounts: `${prefix}accounts`,
    username: (name) => `${prefix}user:${name}`,
    oidc: (hash) => `${prefix}oidc:${hash}`,
    invite: (hash) => `${prefix}invite:${hash}`,
    oidcFlow: (hash) => `${prefix}oidc-flow:${hash}`,
  };
}
