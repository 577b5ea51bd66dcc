/**
 * Sessions as the gateway sees them: create, read, accept a message, stop, replay events.
 * Every operation on a session is one script over its hash-tagged keys.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import { ErrorCodes, ParleyError, userErrorText } from '../contracts/errors.js';
import { compareEventIds } from '../contracts/event-ids.js';
import { isValidToken, sessionKeys, type SessionKeys } from '../contracts/keys.js';
import { messageRecordSchema, sessionEventSchema, type MessageRecord, type SessionView, type StoredSessionEvent, type TurnFailure } from '../contracts/protocol.js';
import { turnErrorSchema } from '../contracts/records.js';
import { publish, type Publisher } from './pubsub.js';
import { enqueue, markUnanswered, type WakeUpRedis } from './queue.js';
import { streamRangeSchema } from './replies.js';
import { acceptMessage, markWake, readSession, requestStop, runSessionScript, switchBranch, touchSession, type ScriptRedis, type SessionScript } from './scripts.js';

/** The commands the gateway's session store uses. */
export interface SessionStoreRedis extends ScriptRedis, Publisher, WakeUpRedis {
  multi(): SessionCreation;
  hSet(key: string, fields: Record<string, string | number>): Promise<unknown>;
  hGet(key: string, field: string): Promise<string | null>;
  xRange(key: string, start: string, end: string, options: { COUNT: number }): Promise<unknown>;
  lRange(key: string, start: number, stop: number): Promise<string[]>;
  unlink(keys: string[]): Promise<unknown>;
}

/** The MULTI that creates a session. */
export interface SessionCreation {
  hSet(key: string, fields: Record<string, string | number>): SessionCreation;
  pExpire(key: string, ms: number): SessionCreation;
  exec(): Promise<unknown>;
}

export interface SessionStoreOptions {
  readonly prefix: string;
  readonly sessionTtlSeconds: number;
  readonly eventsMaxLen: number;
  readonly maxPendingPerSession: number;
  /** Redis Cluster: sharded pub/sub (see scripts.ts). */
  readonly shardedPubSub?: boolean;
  /** Stored history records kept per session (oldest leave first); see HISTORY_MAX_RECORDS. */
  readonly historyMaxRecords: number;
  /** Newest messages refresh_token returns (REFRESH_MAX_MESSAGES). */
  readonly refreshMaxMessages: number;
}

/** The options every process that reads or writes sessions takes from the configuration. */
export function sessionStoreOptions(config: Config): SessionStoreOptions {
  return {
    prefix: config.keyPrefix,
    sessionTtlSeconds: config.sessionTtlSeconds,
    eventsMaxLen: config.eventsMaxLen,
    maxPendingPerSession: config.maxPendingPerSession,
    shardedPubSub: config.redis.cluster,
    historyMaxRecords: config.historyMaxRecords,
    refreshMaxMessages: config.refreshMaxMessages,
  };
}

/** Where and how to wake a worker for an accepted message. */
export interface WakeUp {
  readonly queueKey: string;
  readonly unansweredKey: string;
  /** One Redis node: the accept script adds the queue entry itself (see acceptMessage). */
  readonly inScript: boolean;
}

export type AcceptResult =
  | { status: 'accepted' | 'duplicate'; record: MessageRecord }
  | { status: 'busy' }
  | { status: 'expired' }
  /** An edit or regenerate named a turn the session does not have (or no longer keeps). */
  | { status: 'unknown_turn' };

/**
 * A new turn beside turn `seq` (same parent) instead of after the head: `edit` with the text
 * given, `regenerate` with the text of turn `seq`.
 */
export interface BranchTarget {
  readonly kind: 'edit' | 'regenerate';
  readonly seq: number;
}

export type SwitchResult = { status: 'ok'; head: number } | { status: 'unknown_turn' | 'expired' };

/**
 * Who asks: the account id of the signed-in person, or null. A conversation of a person (a
 * session with an owner) exists only for its owner; for anyone else it reads as unknown.
 */
export type Viewer = string | null;

export interface SessionState {
  readonly lastEventId: string;
  readonly seq: number;
  readonly answered: number;
  readonly leaseHeld: boolean;
  /** The account owning the session (a person's conversation); undefined for anonymous sessions. */
  readonly owner: string | undefined;
}

const CANCEL_TTL_MS = 10 * 60_000;
const statusOnly = z.tuple([z.enum(['expired', 'busy', 'none', 'unknown'])]);
const withRecord = z.tuple([z.enum(['ok', 'duplicate']), z.string()]);
const touchReply = z.tuple([z.literal('ok'), z.string(), z.number(), z.number(), z.number(), z.string()]);
const readReply = z.tuple([z.literal('ok'), z.string(), z.string(), z.string(), z.array(z.string()), z.array(z.string()), z.number(), z.string()]);
const stopReply = z.tuple([z.literal('ok'), z.number()]);
const switchReply = z.tuple([z.literal('ok'), z.number()]);

/** Whether `viewer` may see a session owned by `owner` ("" = anonymous: anyone with the token). */
function visibleTo(owner: string, viewer: Viewer): boolean {
  return owner === '' || owner === viewer;
}

/**
 * Parses a record Parley stored in Redis. A malformed one (corruption, a hand edit, a newer
 * version's format) fails loudly with an error that says so, never echoing the stored text, which
 * may be a user's message, into the logs.
 */
export function parseJsonWith<T>(schema: z.core.$ZodType<T>, text: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ParleyError(ErrorCodes.internal, `Malformed record in Redis: not valid JSON (${text.length} characters)`);
  }
  const parsed = z.safeParse(schema, value);
  if (!parsed.success) throw new ParleyError(ErrorCodes.internal, `Malformed record in Redis: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Orders history by turn: each human message, then its answer (commit order differs when queued). */
export function orderByTurn(records: MessageRecord[]): MessageRecord[] {
  const rank = (record: MessageRecord) => record.seq * 2 + (record.source === 'bot' ? 1 : 0);
  return records.sort((a, b) => rank(a) - rank(b));
}

export class SessionStore {
  constructor(
    private readonly redis: SessionStoreRedis,
    private readonly options: SessionStoreOptions,
  ) {}

  keys(token: string): SessionKeys {
    return sessionKeys(this.options.prefix, token);
  }

  /**
   * A new session. With `owner` (an account id) it is that person's conversation: `keep` makes
   * the scripts' touch() keep its history instead of letting it expire (see scripts). `token`
   * lets a caller note the id elsewhere first (a person's conversation list).
   */
  async create(name: string, owner?: string, token: string = randomUUID()): Promise<SessionView> {
    const start = new Date().toISOString();
    const keys = this.keys(token);
    const fields = { name, start, seq: 0, answered: 0, head: 0 };
    if (owner === undefined) {
      await this.redis.multi().hSet(keys.session, fields).pExpire(keys.session, this.options.sessionTtlSeconds * 1000).exec();
    } else {
      await this.redis.hSet(keys.session, { ...fields, owner, keep: 1 });
    }
    return { token, name, session_start: start, messages: [], last_event_id: '0', head: 0 };
  }

  /**
   * The newest REFRESH_MAX_MESSAGES messages of the history (every branch), oldest first, the
   * turn shown (`head`) and the event id to resume after. Renews the session. Null when it does
   * not exist or is a conversation of someone other than `viewer`.
   */
  async read(token: string, viewer: Viewer = null): Promise<SessionView | null> {
    if (!isValidToken(token)) return null;
    const reply = await this.run(readSession, token, [String(this.options.refreshMaxMessages)]);
    if (statusOnly.safeParse(reply).success) return null;
    const [, name, start, doneEventId, rawMessages, rawErrors, head, owner] = readReply.parse(reply);
    if (!visibleTo(owner, viewer)) return null;
    const failures = new Map<number, TurnFailure>();
    for (let index = 1; index < rawErrors.length; index += 2) {
      const error = parseJsonWith(turnErrorSchema, rawErrors[index] ?? '');
      failures.set(error.seq, { code: error.code, message: userErrorText(error.code), ...(error.ref === undefined ? {} : { ref: error.ref }) });
    }
    const messages = orderByTurn(rawMessages.map((raw) => parseJsonWith(messageRecordSchema, raw))).map((record) => {
      const error = record.source === 'human' ? failures.get(record.seq) : undefined;
      return error === undefined ? record : { ...record, error };
    });
    return { token, name, session_start: start, messages, last_event_id: doneEventId, head };
  }

  /**
   * Every stored record of the session (all branches, at most HISTORY_MAX_RECORDS), in commit
   * order, without renewing it; for exports and search. The caller has checked who may see it.
   */
  async records(token: string): Promise<MessageRecord[]> {
    if (!isValidToken(token)) return [];
    const raw = await this.redis.lRange(this.keys(token).messages, 0, -1);
    return raw.map((record) => parseJsonWith(messageRecordSchema, record));
  }

  /** Renews the session; null when it does not exist or is a conversation of someone other than `viewer`. */
  async touch(token: string, viewer: Viewer = null): Promise<SessionState | null> {
    if (!isValidToken(token)) return null;
    const reply = await this.run(touchSession, token, []);
    const parsed = touchReply.safeParse(reply);
    if (!parsed.success) return null;
    const [, lastEventId, seq, answered, leaseHeld, owner] = parsed.data;
    if (!visibleTo(owner, viewer)) return null;
    return { lastEventId, seq, answered, leaseHeld: leaseHeld === 1, owner: owner === '' ? undefined : owner };
  }

  /**
   * Shows the branch through turn `seq`: the head moves to the newest turn under it, and every
   * socket of the session gets a `branch` event.
   */
  async switchBranch(token: string, seq: number): Promise<SwitchResult> {
    const reply = await this.run(switchBranch, token, [String(seq)]);
    const parsed = switchReply.safeParse(reply);
    if (parsed.success) return { status: 'ok', head: parsed.data[1] };
    return { status: statusOnly.parse(reply)[0] === 'unknown' ? 'unknown_turn' : 'expired' };
  }

  /**
   * Deletes every key of the session at once (a person deleting a conversation). A worker
   * answering it finds it gone at its next write and stops; its sockets are closed by their
   * gateways' expiry sweep.
   */
  async remove(token: string): Promise<void> {
    if (!isValidToken(token)) return;
    const { live: _channel, ...keys } = this.keys(token);
    await this.redis.unlink(Object.values(keys));
  }

  /**
   * Stores a human message as the next turn and wakes a worker (an entry on the queue) — only when
   * it was accepted: refused work costs nothing. On one Redis node the script adds the entry itself
   * (atomically: no worker can see the entry before the message, and the NOSCRIPT resend changes
   * nothing). On a Cluster the queue lives on another node, so the entry follows the script's "ok".
   */
  async accept(
    token: string,
    text: string,
    clientId: string | undefined,
    wake: WakeUp,
    /** The sender's client address ("" = unknown: no per-address cap applies). */
    address = '',
    /** An edit or regenerate; undefined: a new message after the head. */
    target?: BranchTarget,
  ): Promise<AcceptResult> {
    // Noted before the message is stored, so a message can never be stored without it: if the
    // wake-up is lost (a process or a failover dies in between), the workers' sweep finds the turn.
    // (A note for a refused message costs one sorted-set member per session, never a queue entry.)
    const noting = markUnanswered(this.redis, wake.unansweredKey, token);
    const args = [
      randomUUID(),
      text,
      new Date().toISOString(),
      clientId ?? '',
      String(this.options.maxPendingPerSession),
      token,
      String(this.options.historyMaxRecords),
      address,
      target?.kind ?? '',
      target === undefined ? '' : String(target.seq),
    ];
    const storing = runSessionScript(this.redis, this.options, acceptMessage, token, args, wake.inScript ? [wake.queueKey] : []);
    const [{ reply }] = await Promise.all([storing, noting]);
    const result = parseAcceptReply(reply);
    if (result.status === 'accepted' && !wake.inScript) {
      await this.run(markWake, token, [await enqueue(this.redis, wake.queueKey, token)]);
    }
    return result;
  }

  /**
   * Asks for the answer of `turn` (default: the one in progress) to stop, and tells the workers on
   * `cancelChannel` (the session's queue partition's). Returns the turn, or null.
   */
  async requestStop(token: string, cancelChannel: string, turn?: number): Promise<number | null> {
    const reply = await this.run(requestStop, token, [turn === undefined ? '' : String(turn), String(CANCEL_TTL_MS)]);
    const parsed = stopReply.safeParse(reply);
    if (!parsed.success) return null;
    await publish(this.redis, cancelChannel, `${token} ${parsed.data[1]}`, this.options.shardedPubSub === true);
    return parsed.data[1];
  }

  /**
   * Events after `afterId` (exclusive), oldest first. `complete` is false when the stream was
   * capped past that id, i.e. some events the caller asks for are gone.
   */
  async eventsAfter(token: string, afterId: string, count = 1000): Promise<{ events: StoredSessionEvent[]; complete: boolean }> {
    const keys = this.keys(token);
    const start = afterId === '0' ? '-' : `(${afterId}`;
    const [entries, first, firstEver] = await Promise.all([
      this.redis.xRange(keys.events, start, '+', { COUNT: count }),
      afterId === '0' ? Promise.resolve(null) : this.redis.xRange(keys.events, '-', '+', { COUNT: 1 }),
      afterId === '0' ? this.redis.hGet(keys.session, 'first') : Promise.resolve(null),
    ]);
    const events = streamRangeSchema.parse(entries).map((entry) => ({ ...parseJsonWith(sessionEventSchema, entry.message.e ?? ''), eventId: entry.id }));
    // Events trimmed off the capped stream cannot be told apart from events never written, so
    // only an oldest retained event at or before afterId proves nothing is missing. From the very
    // beginning ("0") nothing is missing only while the session's first event ever is retained:
    // its id is noted as `first` (sessions from before that note began with the start of attempt
    // 1 of turn 1, as no branch event could come before it then).
    let complete: boolean;
    if (afterId === '0') {
      const oldest = events[0];
      complete =
        oldest === undefined ||
        oldest.eventId === firstEver ||
        (firstEver === null && oldest.type === 'start' && oldest.seq === 1 && oldest.attempt === 1);
    } else {
      const oldest = first === null ? undefined : streamRangeSchema.parse(first)[0]?.id;
      complete = oldest === undefined || compareEventIds(oldest, afterId) <= 0;
    }
    return { events, complete };
  }

  /** A recent message by id (plain-mode sockets that joined in the middle of an answer). */
  async findMessage(token: string, id: string): Promise<MessageRecord | undefined> {
    const raw = await this.redis.lRange(this.keys(token).messages, -50, -1);
    return raw.map((record) => parseJsonWith(messageRecordSchema, record)).find((record) => record.id === id);
  }

  private async run(lua: SessionScript, token: string, extra: readonly string[]): Promise<unknown> {
    return (await runSessionScript(this.redis, this.options, lua, token, extra)).reply;
  }
}

function parseAcceptReply(reply: unknown): AcceptResult {
  const simple = statusOnly.safeParse(reply);
  if (simple.success) {
    const status = simple.data[0];
    return { status: status === 'busy' ? 'busy' : status === 'unknown' ? 'unknown_turn' : 'expired' };
  }
  const [status, raw] = withRecord.parse(reply);
  return { status: status === 'ok' ? 'accepted' : 'duplicate', record: parseJsonWith(messageRecordSchema, raw) };
}
