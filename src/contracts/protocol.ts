/**
 * The wire contract between browsers, gateways and workers: WebSocket frames, HTTP bodies and the
 * records Parley stores in Redis. Everything that crosses a process boundary is parsed with these
 * schemas; TypeScript types are derived from them so the two can never drift apart.
 */
import { z } from 'zod';
import { ErrorCodes, type ErrorCode } from './errors.js';
import { EVENT_ID_PATTERN } from './event-ids.js';
import type { STREAMING_SUBPROTOCOL } from './wire.js';

export {
  CLIENT_FRAME_TYPES,
  CLOSE_GOING_AWAY,
  CLOSE_TOO_MANY_SOCKETS,
  CLOSE_UNAUTHENTICATED,
  STREAMING_SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
} from './wire.js';

const STREAM_ID_PART_MAX = 18_446_744_073_709_551_615n; // both parts of a stream id are unsigned 64-bit

/** True for an id Redis accepts as the exclusive start of XRANGE: parts within 64 bits, not the largest id. */
function isReadableStreamId(id: string): boolean {
  if (!EVENT_ID_PATTERN.test(id)) return false;
  // Parts of at most 19 digits are below 2^64 - 1: the common case needs no BigInt (hot path).
  if (id.length <= 39 && id.split('-').every((part) => part.length <= 19)) return true;
  const parts = id.split('-').map(BigInt);
  return parts.every((part) => part <= STREAM_ID_PART_MAX) && !parts.every((part) => part === STREAM_ID_PART_MAX);
}

/**
 * Redis stream ids ("1700000000000-0"); "0" means "from the very beginning". Ids Redis itself
 * rejects (a part above 2^64-1) or cannot read after (the largest id) are refused here, so a
 * client's `resume` can never turn into a Redis error.
 */
export const eventIdSchema = z.string().refine(isReadableStreamId, 'an event id such as "1712345678901-0"');

const clientIdSchema = z.string().min(1).max(64).regex(/^[\w.:-]+$/, 'letters, digits and . _ : -');

/** A turn number a client names (JSON numbers beyond 2^53 lose precision; turns never get there). */
const turnSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** Frames a streaming-mode client may send. */
export const clientFrameSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message'), text: z.string(), clientId: clientIdSchema.optional() }).strict(),
  z.object({ type: z.literal('stop'), seq: turnSchema.optional() }).strict(),
  z.object({ type: z.literal('resume'), after: eventIdSchema }).strict(),
  z.object({ type: z.literal('ping') }).strict(),
  /** A new turn beside `seq` (same parent) with new text; stops the answer in progress first. */
  z.object({ type: z.literal('edit'), seq: turnSchema, text: z.string(), clientId: clientIdSchema.optional() }).strict(),
  /** A new turn beside `seq` with the same text: another answer to the same question. */
  z.object({ type: z.literal('regenerate'), seq: turnSchema, clientId: clientIdSchema.optional() }).strict(),
  /** Show the branch through `seq`: the head moves to the newest turn under it. */
  z.object({ type: z.literal('switch'), seq: turnSchema }).strict(),
]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;

/** A message of the history, as `GET /refresh_token` returns it (original fields first). */
export const messageRecordSchema = z.object({
  id: z.string(),
  msg: z.string(),
  timestamp: z.string(),
  source: z.enum(['human', 'bot']),
  /** Position of the turn this message belongs to (1, 2, ...). */
  seq: z.number().int().positive(),
  /**
   * Human messages: the turn this one follows in its branch (0 = the first of the conversation).
   * Records stored before branches existed have none and follow turn seq - 1 (see parentOf).
   */
  parent: z.number().int().nonnegative().optional(),
  /** For bot messages: "done", or "stopped" when the user stopped the answer. */
  status: z.enum(['done', 'stopped']).optional(),
});
export type MessageRecord = z.infer<typeof messageRecordSchema>;

/** The turn a human record follows: its `parent`, or for records from before branches the previous turn. */
export function parentOf(record: Pick<MessageRecord, 'seq' | 'parent'>): number {
  return record.parent ?? record.seq - 1;
}

/** Reference id of a failure: short, quotable, and the key to its log line (never the detail itself). */
export const errorRefSchema = z.string().regex(/^[A-Za-z0-9]{6,16}$/);

const errorCodeSchema = z.enum(Object.values(ErrorCodes) as [ErrorCode, ...ErrorCode[]]);

/**
 * Answer events, as stored in the session's event stream and sent to streaming clients.
 * `start` opens (or, after a worker takeover, restarts) the answer of a turn: a client drops any
 * partial text it holds for that turn.
 */
export const answerEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), seq: z.number().int().positive(), attempt: z.number().int().positive() }),
  z.object({ type: z.literal('delta'), seq: z.number().int().positive(), text: z.string() }),
  z.object({ type: z.literal('done'), seq: z.number().int().positive(), id: z.string(), timestamp: z.string() }),
  z.object({ type: z.literal('stopped'), seq: z.number().int().positive(), id: z.string(), timestamp: z.string() }),
  // `ref` (absent in events written before issue 9) names the log line with the failure's detail.
  z.object({ type: z.literal('error'), seq: z.number().int().positive(), code: errorCodeSchema, message: z.string(), ref: errorRefSchema.optional() }),
]);
export type AnswerEvent = z.infer<typeof answerEventSchema>;
export type StoredEvent = AnswerEvent & { eventId: string };

/**
 * The branch shown changed (an edit, a regenerate or a switch): `head` is the newest turn of the
 * branch now shown. It travels in the session's event stream, so every socket of the session, on
 * any gateway, gets it in order with the answer events, and a resume replays it.
 */
export const branchEventSchema = z.object({ type: z.literal('branch'), head: z.number().int().nonnegative() });
export type BranchEvent = z.infer<typeof branchEventSchema>;

/** Everything a session's event stream holds: answer events and branch changes. */
export const sessionEventSchema = z.union([answerEventSchema, branchEventSchema]);
export type SessionEvent = z.infer<typeof sessionEventSchema>;
export type StoredSessionEvent = SessionEvent & { eventId: string };

/** What the event scripts publish on a session's live channel. */
export const liveEventSchema = z.object({ eventId: eventIdSchema, prev: eventIdSchema, event: sessionEventSchema });
export type LiveEvent = z.infer<typeof liveEventSchema>;

/**
 * The record of a failed turn, kept so a reloaded history can show the error on its message. Only
 * the code and reference are stored; the text shown is USER_ERROR_TEXTS[code]. `message` is read
 * from records written before issue 9 and ignored.
 */
export const turnErrorSchema = z.object({
  seq: z.number().int().positive(),
  code: errorCodeSchema,
  ref: errorRefSchema.optional(),
  message: z.string().optional(),
  timestamp: z.string(),
});
export type TurnError = z.infer<typeof turnErrorSchema>;

/**
 * What each worker reports about itself every few seconds (in the capacity hash), so gateways can
 * estimate how long a new message waits: its slots and its recent time per answer.
 */
export const workerCapacitySchema = z.object({
  slots: z.number().int().nonnegative(),
  /** Moving average of the time from starting a turn to committing it; 0 before the first answer. */
  answerMs: z.number().nonnegative(),
  /** When this report was written (ms since the epoch): old reports are of workers that stopped. */
  at: z.number(),
});
export type WorkerCapacity = z.infer<typeof workerCapacitySchema>;

/** Frames the gateway sends in streaming mode. */
export type ServerFrame =
  | { type: 'ready'; token: string; lastEventId: string; protocol: typeof STREAMING_SUBPROTOCOL }
  /** `parent`: the turn the new one follows (its branch); see messageRecordSchema. */
  | { type: 'accepted'; id: string; seq: number; parent: number; timestamp: string; clientId?: string }
  | StoredSessionEvent
  | { type: 'error'; code: ErrorCode; message: string; ref?: string; seq?: number; eventId?: string; clientId?: string; retryAfterMs?: number }
  | { type: 'resumed'; after: string }
  | { type: 'reset'; reason: string }
  | { type: 'status'; state: ServiceState; message: string }
  /** The session waits for a worker slot: `position` 1 = next; `etaMs` when an estimate exists. */
  | { type: 'queued'; seq: number; position: number; etaMs?: number }
  | { type: 'pong' };

/** `degraded`: the gateway cannot reach Redis right now; messages and answers wait until it can. */
export type ServiceState = 'ok' | 'degraded';

export interface SessionView {
  token: string;
  name: string;
  session_start: string;
  messages: Array<MessageRecord & { error?: { code: ErrorCode; message: string; ref?: string } }>;
  /** Event id matching this snapshot: resume after it to get everything that follows. */
  last_event_id: string;
  /** The newest turn of the branch shown (0 before the first message); walk up `parent` from it. */
  head: number;
}
