/**
 * Schemas of the Redis replies Parley reads, as node-redis maps them: the stores' interfaces
 * (see redis.ts) type these replies `unknown`, so a reply of another shape (another client
 * version, a proxy in between) fails here with a message instead of becoming a wrong value.
 */
import { z } from 'zod';

/** A stream entry (XRANGE, XREVRANGE, XREADGROUP, XAUTOCLAIM): RESP field values are strings. */
export const streamEntrySchema = z.object({ id: z.string(), message: z.record(z.string(), z.string()) });
export type StreamEntry = z.infer<typeof streamEntrySchema>;

/** XRANGE / XREVRANGE. */
export const streamRangeSchema = z.array(streamEntrySchema);

/** XREADGROUP of one stream: null when BLOCK ran out. */
export const streamReadSchema = z.array(z.object({ name: z.string(), messages: z.array(streamEntrySchema) })).nullable();

/** XAUTOCLAIM: an entry deleted while pending comes back as null. */
export const autoClaimSchema = z.object({ messages: z.array(streamEntrySchema.nullable()) });

/** XINFO GROUPS (the fields Parley reads). */
export const groupsSchema = z.array(z.object({ name: z.string(), 'last-delivered-id': z.string() }));

/** XPENDING's summary form (the field Parley reads): firstId is null when nothing is pending. */
export const pendingSummarySchema = z.object({ firstId: z.string().nullable() });

/** ZRANGEBYSCORE … WITHSCORES. */
export const scoredMembersSchema = z.array(z.object({ value: z.string(), score: z.number() }));

/** HGETALL, CONFIG GET. */
export const stringMapSchema = z.record(z.string(), z.string());
