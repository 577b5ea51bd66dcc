/**
 * Records only Redis holds (and the workers and gateways read back): what the session scripts
 * publish, failed turns, the workers' capacity reports. Never sent to browsers as they are.
 */
import * as z from 'zod/mini';
import { errorCodeSchema, errorRefSchema, eventIdSchema, sessionEventSchema } from './protocol.js';

/** What the event scripts publish on a session's live channel. */
export const liveEventSchema = z.object({ eventId: eventIdSchema, prev: eventIdSchema, event: sessionEventSchema });
export type LiveEvent = z.infer<typeof liveEventSchema>;

/**
 * The record of a failed turn, kept so a reloaded history can show the error on its message. Only
 * the code and reference are stored; the text shown is USER_ERROR_TEXTS[code]. `message` is read
 * from records written before issue 9 and ignored.
 */
export const turnErrorSchema = z.object({
  seq: z.number().check(z.int(), z.positive()),
  code: errorCodeSchema,
  ref: z.optional(errorRefSchema),
  message: z.optional(z.string()),
  timestamp: z.string(),
});
export type TurnError = z.infer<typeof turnErrorSchema>;

/**
 * What each worker reports about itself every few seconds (in the capacity hash), so gateways can
 * estimate how long a new message waits: its slots and its recent time per answer.
 */
export const workerCapacitySchema = z.object({
  slots: z.number().check(z.int(), z.nonnegative()),
  /** Moving average of the time from starting a turn to committing it; 0 before the first answer. */
  answerMs: z.number().check(z.nonnegative()),
  /** When this report was written (ms since the epoch): old reports are of workers that stopped. */
  at: z.number(),
});
export type WorkerCapacity = z.infer<typeof workerCapacitySchema>;
