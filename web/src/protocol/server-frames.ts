/**
 * Parses frames from the gateway. The server is trusted, but a proxy, a version skew or a bug
 * must not crash the UI or put `undefined` into the conversation: anything malformed is dropped.
 */
import { isEventIdShaped } from '../../../src/contracts/event-ids.js';
import { STREAMING_SUBPROTOCOL } from '../../../src/contracts/wire.js';
import type { ErrorCode, ServerFrame, StoredEvent } from './types.js';

type Json = Record<string, unknown>;

/**
 * A rejected frame. The protocol does not name the message it refuses (the client takes the
 * oldest one in flight); a `clientId`, if a server adds one, is used instead.
 */
export interface RejectionFrame {
  readonly type: 'error';
  readonly code: ErrorCode;
  readonly message: string;
  readonly clientId?: string;
}

export type IncomingFrame = Exclude<ServerFrame, { type: 'error' }> | StoredEvent | RejectionFrame;

const isString = (value: unknown): value is string => typeof value === 'string';
const isSeq = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value > 0;

export function parseServerFrame(data: unknown): IncomingFrame | undefined {
  if (!isString(data)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const frame = json as Json;
  switch (frame.type) {
    case 'ready':
      return isString(frame.token) && isEventIdShaped(frame.lastEventId) ? { type: 'ready', token: frame.token, lastEventId: frame.lastEventId, protocol: STREAMING_SUBPROTOCOL } : undefined;
    case 'accepted':
      return parseAccepted(frame);
    case 'reset':
      return { type: 'reset', reason: isString(frame.reason) ? frame.reason : '' };
    case 'pong':
      return { type: 'pong' };
    case 'resumed':
      return isEventIdShaped(frame.after) ? { type: 'resumed', after: frame.after } : undefined;
    case 'status':
      return frame.state === 'ok' || frame.state === 'degraded' ? { type: 'status', state: frame.state, message: isString(frame.message) ? frame.message : '' } : undefined;
    case 'queued':
      return parseQueued(frame);
    case 'error':
      if (frame.eventId !== undefined) return parseEvent(frame);
      return parseRejection(frame);
    default:
      return parseEvent(frame);
  }
}

function parseRejection(frame: Json): RejectionFrame | undefined {
  if (!isString(frame.code)) return undefined;
  const rejection: RejectionFrame = { type: 'error', code: frame.code as ErrorCode, message: isString(frame.message) ? frame.message : frame.code };
  return isString(frame.clientId) ? { ...rejection, clientId: frame.clientId } : rejection;
}

function parseQueued(frame: Json): IncomingFrame | undefined {
  if (!isSeq(frame.seq) || !isSeq(frame.position)) return undefined;
  const queued = { type: 'queued' as const, seq: frame.seq, position: frame.position };
  return typeof frame.etaMs === 'number' && frame.etaMs >= 0 ? { ...queued, etaMs: frame.etaMs } : queued;
}

function parseAccepted(frame: Json): IncomingFrame | undefined {
  if (!isString(frame.id) || !isSeq(frame.seq)) return undefined;
  const parent = typeof frame.parent === 'number' && Number.isInteger(frame.parent) && frame.parent >= 0 ? frame.parent : frame.seq - 1;
  const accepted = { type: 'accepted' as const, id: frame.id, seq: frame.seq, parent, timestamp: isString(frame.timestamp) ? frame.timestamp : '' };
  return isString(frame.clientId) ? { ...accepted, clientId: frame.clientId } : accepted;
}

function parseEvent(frame: Json): StoredEvent | undefined {
  const { seq, eventId } = frame;
  if (!isSeq(seq) || !isEventIdShaped(eventId)) return undefined;
  switch (frame.type) {
    case 'start':
      return { type: 'start', seq, eventId, attempt: isSeq(frame.attempt) ? frame.attempt : 1 };
    case 'delta':
      return isString(frame.text) ? { type: 'delta', seq, eventId, text: frame.text } : undefined;
    case 'done':
    case 'stopped':
      return isString(frame.id) ? { type: frame.type, seq, eventId, id: frame.id, timestamp: isString(frame.timestamp) ? frame.timestamp : '' } : undefined;
    case 'error':
      return isString(frame.code)
        ? {
            type: 'error',
            seq,
            eventId,
            code: frame.code as ErrorCode,
            message: isString(frame.message) ? frame.message : frame.code,
            ...(isString(frame.ref) && /^[A-Za-z0-9]{6,16}$/.test(frame.ref) ? { ref: frame.ref } : {}),
          }
        : undefined;
    default:
      return undefined;
  }
}

export function isAnswerEvent(frame: IncomingFrame): frame is StoredEvent {
  return 'eventId' in frame && frame.eventId !== undefined && 'seq' in frame && frame.seq !== undefined;
}
