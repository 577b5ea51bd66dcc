/**
 * Parses frames from the gateway with the contracts' own schemas. The server is trusted, but a
 * proxy, a version skew or a bug must not crash the UI or put `undefined` into the conversation:
 * anything that does not match is dropped.
 */
import { serverFrameSchema } from '../../../src/contracts/protocol.js';
import type { ServerFrame, StoredEvent } from './types.js';

export type IncomingFrame = ServerFrame;

export function parseServerFrame(data: unknown): IncomingFrame | undefined {
  if (typeof data !== 'string') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return undefined;
  }
  return serverFrameSchema.safeParse(json).data;
}

/** An answer event (start, delta, done, stopped, error of a turn), as opposed to a control frame or a branch change. */
export function isAnswerEvent(frame: IncomingFrame): frame is StoredEvent {
  return 'eventId' in frame && frame.type !== 'branch';
}
