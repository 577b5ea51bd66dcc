/**
 * Sessions as the gateway sees them: create, read, accept a message, stop, replay events.
 * Every operation on a session is one script over its hash-tagged keys.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ErrorCodes, ParleyError, userErrorText } from '../contracts/errors.js';
import { compareEventIds } from '../contracts/event-ids.js';
import { isValidToken, sessionKeys, type SessionKeys } from '../contracts/keys.js';
import { answerEventSchema, messageRecordSchema, type MessageRecord, type SessionView, type StoredEvent, type TurnFailure } from '../contracts/protocol.js';
import { turnErrorSchema } from '../contracts/records.js';
import { publish, type Publisher } from './pubsub.js';
import { enqueue, markUnanswered, type WakeUpRedis } from './queue.js';
import { streamRangeSchema } from './replies.js';
import { acceptMessage, markWake, readSession, requestStop, runSessionScript, touchSession, type ScriptRedis, type SessionScript } from './scripts.js';

/** The commands the gateway's session store uses. */
export interface SessionStoreRedis extends ScriptRedis, Publisher, WakeUpRedis {
  multi(): SessionCreation;
  xRange(key: string, start: string, end: string, options: { COUNT: number }): Promise<unknown>;
  lRange(key: string, start: number, stop: number): Promise<string[]>;
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
  | { status: 'expired' };

export interface SessionState {
  readonly lastEventId: string;
  readonly seq: number;
  readonly answered: number;
  readonly leaseHeld: boolean;
}

const CANCEL_TTL_MS = 10 * 60_000;
const statusOnly = z.tuple([z.enum(['expired', 'busy', 'none'])]);
const withRecord = z.tuple([z.enum(['ok', 'duplicate']), z.string()]);
const touchReply = z.tuple([z.literal('ok'), z.string(), z.number(), z.number(), z.number()]);
const readReply = z.tuple([z.literal('ok'), z.string(), z.string(), z.string(), z.array(z.string()), z.array(z.string())]);
const stopReply = z.tuple([z.literal('ok'), z.number()]);

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

  async create(name: string): Promise<SessionView> {
    const token = randomUUID();
    const start = new Date().toISOString();
    const keys = this.keys(token);
    await this.redis
      .multi()
      .hSet(keys.session, { name, start, seq: 0, answered: 0 })
      .pExpire(keys.session, this.options.sessionTtlSeconds * 1000)
      .exec();
    return { token, name, session_start: start, messages: [], last_event_id: '0' };
  }

  /**
   * The newest REFRESH_MAX_MESSAGES messages of the history, oldest first, and the event id to
   * resume after. Renews the session.
   */
  async read(token: string): Promise<SessionView | null> {
    if (!isValidToken(token)) return null;
    const reply = await this.run(readSession, token, [String(this.options.refreshMaxMessages)]);
    if (statusOnly.safeParse(reply).success) return null;
    const [, name, start, doneEventId, rawMessages, rawErrors] = readReply.parse(reply);
    const failures = new Map<number, TurnFailure>();
    for (let index = 1; index < rawErrors.length; index += 2) {
      const error = parseJsonWith(turnErrorSchema, rawErrors[index] ?? '');
      failures.set(error.seq, { code: error.code, message: userErrorText(error.code), ...(error.ref === undefined ? {} : { ref: error.ref }) });
    }
    const messages = orderByTurn(rawMessages.map((raw) => parseJsonWith(messageRecordSchema, raw))).map((record) => {
      const error = record.source === 'human' ? failures.get(record.seq) : undefined;
      return error === undefined ? record : { ...record, error };
    });
    return { token, name, session_start: start, messages, last_event_id: doneEventId };
  }

  /** Renews the session; null when it does not exist. */
  async touch(token: string): Promise<SessionState | null> {
    if (!isValidToken(token)) return null;
    const reply = await this.run(touchSession, token, []);
    const parsed = touchReply.safeParse(reply);
    if (!parsed.success) return null;
    const [, lastEventId, seq, answered, leaseHeld] = parsed.data;
    return { lastEventId, seq, answered, leaseHeld: leaseHeld === 1 };
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
  async eventsAfter(token: string, afterId: string, count = 1000): Promise<{ events: StoredEvent[]; complete: boolean }> {
    const key = this.keys(token).events;
    const start = afterId === '0' ? '-' : `(${afterId}`;
    const [entries, first] = await Promise.all([
      this.redis.xRange(key, start, '+', { COUNT: count }),
      afterId === '0' ? Promise.resolve(null) : this.redis.xRange(key, '-', '+', { COUNT: 1 }),
    ]);
    const events = streamRangeSchema.parse(entries).map((entry) => ({ ...parseJsonWith(answerEventSchema, entry.message.e ?? ''), eventId: entry.id }));
    // Events trimmed off the capped stream cannot be told apart from events never written, so
    // only an oldest retained event at or before afterId proves nothing is missing. From the very
    // beginning ("0") nothing is missing only while the session's first event ever is retained:
    // startTurn writes it, the start of attempt 1 of turn 1, before any other event.
    let complete: boolean;
    if (afterId === '0') {
      const oldest = events[0];
      complete = oldest === undefined || (oldest.type === 'start' && oldest.seq === 1 && oldest.attempt === 1);
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
  if (simple.success) return { status: simple.data[0] === 'busy' ? 'busy' : 'expired' };
  const [status, raw] = withRecord.parse(reply);
  return { status: status === 'ok' ? 'accepted' : 'duplicate', record: parseJsonWith(messageRecordSchema, raw) };
}
