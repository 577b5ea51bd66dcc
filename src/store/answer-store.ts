/**
 * Sessions as a worker sees them: take the session's lease, begin the next turn, append answer
 * text, commit the outcome exactly once. Every write checks the lease, and the commit also
 * checks that the turn is still unanswered, so a slow or revived worker can never commit twice.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { userErrorText, type ErrorCode } from '../contracts/errors.js';
import { ancestry } from '../contracts/branches.js';
import { sessionKeys } from '../contracts/keys.js';
import { messageRecordSchema, type AnswerEvent, type MessageRecord } from '../contracts/protocol.js';
import type { TurnError } from '../contracts/records.js';
import { compareEventIds } from '../contracts/event-ids.js';
import {
  appendDelta,
  finishTurn,
  inspectSession,
  markWake,
  renewLease,
  runSessionScript,
  startTurn,
  type ScriptRedis,
  type SessionScript,
  type SessionScriptOptions,
} from './scripts.js';

/** The commands the worker's answer store uses. */
export interface AnswerStoreRedis extends ScriptRedis {
  set(key: string, value: string, options: { condition: 'NX'; expiration: { type: 'PX'; value: number } }): Promise<string | null>;
  hmGet(key: string, fields: string[]): Promise<Array<string | null>>;
  lRange(key: string, start: number, stop: number): Promise<string[]>;
}

export interface AnswerStoreOptions extends SessionScriptOptions {
  readonly leaseMs: number;
  /** Newest history records a turn needs at most (the prompt window keeps fewer). */
  readonly historyRecords: number;
}

export type StartTurnResult =
  | { status: 'ok'; turn: number; attempt: number; cancelled: boolean; history: MessageRecord[]; malformedRecords: number }
  | { status: 'idle' | 'lost' | 'expired' };

export type TurnOutcome =
  | { kind: 'answer'; text: string; stopped: boolean }
  /** A failed turn: the user sees the fixed text of `code`; `ref` names the log line with the detail. */
  | { kind: 'error'; code: ErrorCode; ref: string };

/** Where a session stands for the sweep: gone, fully answered, being answered, or abandoned. */
export type SessionStanding = 'expired' | 'answered' | 'owned' | 'abandoned';

/** "ok": committed, more turns wait; "drained": committed, none left, and the lease is released. */
export type FinishStatus = 'ok' | 'drained' | 'stale' | 'lost' | 'expired';

const bareStatus = z.tuple([z.enum(['idle', 'lost', 'expired', 'stale'])]);
const startReply = z.tuple([z.literal('ok'), z.number(), z.number(), z.number(), z.array(z.string())]);
const appendReply = z.tuple([z.literal('ok'), z.string(), z.number()]);
const inspectReply = z.tuple([z.literal('ok'), z.number(), z.number(), z.number()]);
const finishReply = z.tuple([z.enum(['ok', 'drained', 'stale', 'lost', 'expired'])]).rest(z.unknown());

/**
 * Parsed history records kept per worker (oldest dropped first): the newest records of 250
 * sessions as long as a turn ever reads (HISTORY_RECORDS), 30 MB of heap. The sessions a worker serves
 * in turn must fit: evicted in a cycle, every record misses, and a turn of a long session parses
 * all 200 again (with 10,000, 100 clients in 200-turn sessions ran at 57 % of the throughput).
 */
const PARSED_RECORDS_KEPT = 50_000;

export class AnswerStore {
  /** Stored record text → the record, or null when it is malformed. */
  private readonly parsedRecords = new Map<string, MessageRecord | null>();

  constructor(
    private readonly redis: AnswerStoreRedis,
    private readonly options: AnswerStoreOptions,
  ) {}

  async acquireLease(token: string, owner: string): Promise<boolean> {
    const reply = await this.redis.set(sessionKeys(this.options.prefix, token).lease, owner, {
      condition: 'NX',
      expiration: { type: 'PX', value: this.options.leaseMs },
    });
    return reply === 'OK';
  }

  async renewLease(token: string, owner: string): Promise<boolean> {
    return (await this.run(renewLease, token, [owner, String(this.options.leaseMs)])) === 1;
  }

  /**
   * Gives the session back (shutdown, or yielding to waiting sessions): the next worker to take
   * the lease starts the next turn at once. It is the renewal script with a lifetime of 0, which
   * deletes the lease (a 1 ms lease would still refuse a worker that takes the session back within
   * that millisecond, and that worker would drop its wake-up), and only ever a lease this owner holds.
   */
  async releaseLease(token: string, owner: string): Promise<void> {
    await this.run(renewLease, token, [owner, '0']);
  }

  /**
   * Whether a newer queue entry for the session exists ("wake" in the session hash), and the
   * client address of its newest message. An entry only says "this session has work"; whoever takes
   * the newer one answers every message this one announced, so a stale one needs no work of its
   * own. A backlog of N messages then holds one place in the queue, not N.
   */
  async wakeState(token: string, entryId: string): Promise<{ stale: boolean; address: string | undefined }> {
    const [newest, address] = await this.redis.hmGet(sessionKeys(this.options.prefix, token).session, ['wake', 'addr']);
    return { stale: typeof newest === 'string' && compareEventIds(entryId, newest) < 0, address: address || undefined };
  }

  /** Records a queue entry just added for the session as its newest (see isStaleWake). */
  async markWake(token: string, entryId: string): Promise<void> {
    await this.run(markWake, token, [entryId]);
  }

  /** Reads (without renewing) whether the session has unanswered turns and whether anyone owns it. */
  async inspect(token: string): Promise<SessionStanding> {
    const parsed = inspectReply.safeParse(await this.run(inspectSession, token, []));
    if (!parsed.success) return 'expired';
    const [, seq, answered, leaseHeld] = parsed.data;
    if (answered >= seq) return 'answered';
    return leaseHeld === 1 ? 'owned' : 'abandoned';
  }

  async startTurn(token: string, owner: string): Promise<StartTurnResult> {
    const reply = await this.run(startTurn, token, [owner, String(this.options.historyRecords)]);
    const simple = bareStatus.safeParse(reply);
    if (simple.success) return { status: simple.data[0] === 'stale' ? 'lost' : simple.data[0] };
    const [, turn, attempt, cancelled, newest] = startReply.parse(reply);
    const raw = await this.wholeBranch(token, turn, newest);
    // A record we cannot read is left out rather than failing the turn forever: every retry would
    // hit it again. The drain reports it, and fails the turn itself only if its question is lost.
    const history = raw.flatMap((record) => this.parseRecord(record) ?? []);
    return { status: 'ok', turn, attempt, cancelled: cancelled === 1, history, malformedRecords: raw.length - history.length };
  }

  /**
   * The newest records hold enough of a turn's branch (as much as a prompt window takes, as in a
   * conversation without branches) unless the person went back to an old branch (a switch, or an
   * edit far up) after many turns elsewhere: then few of the turn's ancestors are among them, and
   * all stored records are read (at most HISTORY_MAX_RECORDS; records never change once written,
   * so this read needs no atomicity with startTurn).
   */
  private async wholeBranch(token: string, turn: number, newest: string[]): Promise<string[]> {
    if (newest.length < this.options.historyRecords) return newest;
    const branch = ancestry(
      newest.flatMap((record) => this.parseRecord(record) ?? []),
      turn,
    );
    // Without branches about half the records are ancestors (a question and its answer each).
    if (branch.complete || branch.turns.length >= this.options.historyRecords / 4) return newest;
    return this.redis.lRange(sessionKeys(this.options.prefix, token).messages, 0, -1);
  }

  /**
   * Appends a batch of text; reports whether the user has asked to stop this turn. "lost" also
   * covers a session that expired meanwhile: either way this worker must stop writing to it.
   */
  async appendDelta(token: string, owner: string, turn: number, text: string): Promise<{ status: 'ok' | 'lost'; cancelled: boolean }> {
    const event: AnswerEvent = { type: 'delta', seq: turn, text };
    const reply = await this.run(appendDelta, token, [owner, String(turn), JSON.stringify(event)]);
    const parsed = appendReply.safeParse(reply);
    return parsed.success ? { status: 'ok', cancelled: parsed.data[2] === 1 } : { status: 'lost', cancelled: false };
  }

  /** Commits the turn's outcome with the last unflushed text, exactly once; see FinishStatus. */
  async finishTurn(token: string, owner: string, turn: number, outcome: TurnOutcome, unflushed: string): Promise<FinishStatus> {
    const timestamp = new Date().toISOString();
    const lastDelta = unflushed === '' ? '' : JSON.stringify({ type: 'delta', seq: turn, text: unflushed } satisfies AnswerEvent);
    const [mode, record, terminal] = this.describe(turn, outcome, timestamp);
    const reply = await this.run(finishTurn, token, [owner, String(turn), lastDelta, mode, JSON.stringify(record), JSON.stringify(terminal)]);
    return finishReply.parse(reply)[0];
  }

  private describe(turn: number, outcome: TurnOutcome, timestamp: string): ['message' | 'error', MessageRecord | TurnError, AnswerEvent] {
    if (outcome.kind === 'error') {
      const { code, ref } = outcome;
      const error: TurnError = { seq: turn, code, ref, timestamp };
      return ['error', error, { type: 'error', seq: turn, code, message: userErrorText(code), ref }];
    }
    const id = randomUUID();
    const status = outcome.stopped ? 'stopped' : 'done';
    const record: MessageRecord = { id, msg: outcome.text, timestamp, source: 'bot', seq: turn, status };
    return ['message', record, { type: status, seq: turn, id, timestamp }];
  }

  /**
   * Records never change once written, and every turn of a session reads the same ones again, so
   * each stored text is parsed and validated once (about a seventh of the worker's CPU otherwise).
   */
  private parseRecord(raw: string): MessageRecord | undefined {
    let record = this.parsedRecords.get(raw);
    if (record === undefined) {
      const parsed = messageRecordSchema.safeParse(safeJson(raw));
      record = parsed.success ? parsed.data : null;
      if (this.parsedRecords.size >= PARSED_RECORDS_KEPT) this.parsedRecords.delete(this.parsedRecords.keys().next().value ?? '');
      this.parsedRecords.set(raw, record);
    }
    return record ?? undefined;
  }

  private async run(lua: SessionScript, token: string, extra: readonly string[]): Promise<unknown> {
    return (await runSessionScript(this.redis, this.options, lua, token, extra)).reply;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
