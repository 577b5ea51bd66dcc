/**
 * The wire's schemas: WebSocket frames and HTTP bodies between browsers and gateways, and the
 * message records both sides read. Written with `zod/mini`, so the browser bundle validates with
 * the very same schemas at a few kilobytes; TypeScript types are derived from them, so the two
 * can never drift apart. The plain values are in wire.ts and event-ids.ts, the records only
 * Redis holds in records.ts.
 */
import * as z from 'zod/mini';
import { ErrorCodes, type ErrorCode } from './errors.js';
import { EVENT_ID_PATTERN } from './event-ids.js';
import { STREAMING_SUBPROTOCOL } from './wire.js';

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
export const eventIdSchema = z.string().check(z.refine(isReadableStreamId, 'an event id such as "1712345678901-0"'));

/** A turn number (JSON numbers beyond 2^53 lose precision; turns never get there). */
const turnSchema = z.number().check(z.int(), z.positive(), z.maximum(Number.MAX_SAFE_INTEGER));
/** A turn or 0, "before the first turn" (the root of the conversation's tree). */
const turnOrRootSchema = z.number().check(z.int(), z.nonnegative(), z.maximum(Number.MAX_SAFE_INTEGER));
const clientIdSchema = z.string().check(z.minLength(1), z.maxLength(64), z.regex(/^[\w.:-]+$/, 'letters, digits and . _ : -'));

/** Frames a streaming-mode client may send. */
export const clientFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('message'), text: z.string(), clientId: z.optional(clientIdSchema) }),
  z.strictObject({ type: z.literal('stop'), seq: z.optional(turnSchema) }),
  z.strictObject({ type: z.literal('resume'), after: eventIdSchema }),
  z.strictObject({ type: z.literal('ping') }),
  /** A new turn beside `seq` (same parent) with new text; stops the answer in progress first. */
  z.strictObject({ type: z.literal('edit'), seq: turnSchema, text: z.string(), clientId: z.optional(clientIdSchema) }),
  /** A new turn beside `seq` with the same text: another answer to the same question. */
  z.strictObject({ type: z.literal('regenerate'), seq: turnSchema, clientId: z.optional(clientIdSchema) }),
  /** Show the branch through `seq`: the head moves to the newest turn under it. */
  z.strictObject({ type: z.literal('switch'), seq: turnSchema }),
]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;

/** A message of the history, as `GET /api/v1/session` returns it (original fields first). */
export const messageRecordSchema = z.object({
  id: z.string(),
  msg: z.string(),
  timestamp: z.string(),
  source: z.enum(['human', 'bot']),
  /** Position of the turn this message belongs to (1, 2, ...). */
  seq: turnSchema,
  /**
   * Human messages: the turn this one follows in its branch (0 = the first of the conversation).
   * Records stored before branches existed have none and follow turn seq - 1 (see parentOf).
   */
  parent: z.optional(turnOrRootSchema),
  /** For bot messages: "done", or "stopped" when the user stopped the answer. */
  status: z.optional(z.enum(['done', 'stopped'])),
}).check(z.refine((record) => record.parent === undefined || record.parent < record.seq, 'a turn follows an older one'));
export type MessageRecord = z.infer<typeof messageRecordSchema>;

/** The turn a human record follows: its `parent`, or for records from before branches the previous turn. */
export function parentOf(record: Pick<MessageRecord, 'seq' | 'parent'>): number {
  return record.parent ?? record.seq - 1;
}

/** Reference id of a failure: short, quotable, and the key to its log line (never the detail itself). */
export const errorRefSchema = z.string().check(z.regex(/^[A-Za-z0-9]{6,16}$/));

export const errorCodeSchema = z.enum(Object.values(ErrorCodes) as [ErrorCode, ...ErrorCode[]]);

/**
 * Answer events, as stored in the session's event stream and sent to streaming clients.
 * `start` opens (or, after a worker takeover, restarts) the answer of a turn: a client drops any
 * partial text it holds for that turn.
 */
const startEvent = z.object({ type: z.literal('start'), seq: turnSchema, attempt: turnSchema });
const deltaEvent = z.object({ type: z.literal('delta'), seq: turnSchema, text: z.string() });
const doneEvent = z.object({ type: z.literal('done'), seq: turnSchema, id: z.string(), timestamp: z.string() });
const stoppedEvent = z.object({ type: z.literal('stopped'), seq: turnSchema, id: z.string(), timestamp: z.string() });
// `ref` (absent in events written before issue 9) names the log line with the failure's detail.
const errorEvent = z.object({ type: z.literal('error'), seq: turnSchema, code: errorCodeSchema, message: z.string(), ref: z.optional(errorRefSchema) });

export const answerEventSchema = z.discriminatedUnion('type', [startEvent, deltaEvent, doneEvent, stoppedEvent, errorEvent]);
export type AnswerEvent = z.infer<typeof answerEventSchema>;

const withEventId = <Shape extends z.core.$ZodLooseShape>(event: z.ZodMiniObject<Shape>) => z.extend(event, { eventId: eventIdSchema });

/** An answer event with the id of its stream entry, as a streaming client receives it. */
export const storedEventSchema = z.discriminatedUnion('type', [
  withEventId(startEvent),
  withEventId(deltaEvent),
  withEventId(doneEvent),
  withEventId(stoppedEvent),
  withEventId(errorEvent),
]);
export type StoredEvent = z.infer<typeof storedEventSchema>;

/**
 * The branch shown changed (an edit, a regenerate or a switch): `head` is the newest turn of the
 * branch now shown. It travels in the session's event stream, so every socket of the session, on
 * any gateway, gets it in order with the answer events, and a resume replays it.
 */
export const branchEventSchema = z.object({ type: z.literal('branch'), head: turnOrRootSchema });
export type BranchEvent = z.infer<typeof branchEventSchema>;

/** Everything a session's event stream holds: answer events and branch changes. */
export const sessionEventSchema = z.union([answerEventSchema, branchEventSchema]);
export type SessionEvent = z.infer<typeof sessionEventSchema>;

/** A session event with the id of its stream entry, as a streaming client receives it. */
export const storedSessionEventSchema = z.union([storedEventSchema, withEventId(branchEventSchema)]);
export type StoredSessionEvent = z.infer<typeof storedSessionEventSchema>;

/** `degraded`: the gateway cannot reach Redis right now; messages and answers wait until it can. */
export const serviceStateSchema = z.enum(['ok', 'degraded']);
export type ServiceState = z.infer<typeof serviceStateSchema>;

/** Frames the gateway sends in streaming mode, other than answer events. */
export const controlFrameSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), token: z.string(), lastEventId: eventIdSchema, protocol: z.literal(STREAMING_SUBPROTOCOL) }),
  /**
   * `parent`: the turn the new one follows (its branch); see messageRecordSchema. This gateway
   * always sends it; a client treats its absence (a server from before branches) as "the head".
   */
  z
    .object({ type: z.literal('accepted'), id: z.string(), seq: turnSchema, parent: z.optional(turnOrRootSchema), timestamp: z.string(), clientId: z.optional(z.string()) })
    .check(z.refine((frame) => frame.parent === undefined || frame.parent < frame.seq, 'a turn follows an older one')),
  /** A refused frame; `clientId` names the message when the client gave one. */
  z.object({
    type: z.literal('error'),
    code: errorCodeSchema,
    message: z.string(),
    ref: z.optional(errorRefSchema),
    clientId: z.optional(z.string()),
    retryAfterMs: z.optional(z.number().check(z.nonnegative())),
  }),
  z.object({ type: z.literal('resumed'), after: eventIdSchema }),
  z.object({ type: z.literal('reset'), reason: z.string() }),
  z.object({ type: z.literal('status'), state: serviceStateSchema, message: z.string() }),
  /** The session waits for a worker slot: `position` 1 = next; `etaMs` when an estimate exists. */
  z.object({ type: z.literal('queued'), seq: turnSchema, position: turnSchema, etaMs: z.optional(z.number().check(z.nonnegative())) }),
  z.object({ type: z.literal('pong') }),
]);

/** Everything the gateway sends in streaming mode. A session event carries its `eventId`. */
export const serverFrameSchema = z.union([storedSessionEventSchema, controlFrameSchema]);
export type ServerFrame = z.infer<typeof serverFrameSchema>;

/** What a failed turn shows on its question in a reloaded history. */
export const turnFailureSchema = z.object({ code: errorCodeSchema, message: z.string(), ref: z.optional(errorRefSchema) });
export type TurnFailure = z.infer<typeof turnFailureSchema>;

/**
 * A session with its history (`GET /api/v1/session`; `POST /token` answers the same without
 * `last_event_id`, which then is "0").
 */
export const sessionViewSchema = z.object({
  token: z.string(),
  name: z.string(),
  session_start: z.string(),
  messages: z.array(z.extend(messageRecordSchema, { error: z.optional(turnFailureSchema) })),
  /** Event id matching this snapshot: resume after it to get everything that follows. */
  last_event_id: z._default(eventIdSchema, '0'),
  /** The newest turn of the branch shown (0 before the first message); walk up `parent` from it. */
  head: z._default(turnOrRootSchema, 0),
  /** Conversations (the people API) only: the title the list shows. */
  title: z.optional(z.string()),
});
export type SessionView = z.infer<typeof sessionViewSchema>;

/** The body of a 400 for a name that is blank or too long. */
export const invalidNameBodySchema = z.object({ detail: z.object({ loc: z.literal('name'), msg: z.string() }) });
