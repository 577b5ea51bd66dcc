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

export interface GlobalKeys {
  /** Stream: one entry per accepted message (a nudge naming the session). */
  readonly queue: string;
  /** Consumer group of all workers on the queue. */
  readonly group: string;
  /** Pub/sub channel: "<token> <seq>" whenever a user stops an answer. */
  readonly cancelChannel: string;
  /** Key pattern that matches every key of every session (for operations and tests). */
  readonly sessionPattern: string;
  /** Hash: worker consumer name -> its capacity report (JSON, workerCapacitySchema). */
  readonly capacity: string;
  /** Sorted set per client address: drains answering its sessions (member = drain, score = expiry). */
  addressSlots(address: string): string;
}

export function globalKeys(prefix: string): GlobalKeys {
  return {
    queue: `${prefix}queue`,
    group: `${prefix}workers`,
    cancelChannel: `${prefix}cancel`,
    sessionPattern: `${prefix}{*}:*`,
    capacity: `${prefix}capacity`,
    addressSlots: (address) => `${prefix}addr:${address}`,
  };
}
