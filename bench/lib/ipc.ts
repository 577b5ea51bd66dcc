/** Messages between the harness and bench/worker-main.ts over the child's IPC channel. */
import { z } from 'zod';
import type { BenchModelSettings, YieldLog } from '../bench-model.js';

const rateSchema = z.union([z.literal('instant'), z.number().positive()]);

export const workerRequestSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('configure'),
    model: z.object({ tokens: z.number().int().positive(), rate: rateSchema, recordYields: z.boolean() }),
  }),
  z.object({ type: z.literal('yields') }),
]);
export type WorkerRequest = { type: 'configure'; model: BenchModelSettings } | { type: 'yields' };

export const workerReplySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), pid: z.number() }),
  // bench/model-server.ts, once it accepts connections.
  z.object({ type: z.literal('listening'), port: z.number() }),
  z.object({ type: z.literal('configured') }),
  z.object({ type: z.literal('yields'), log: z.record(z.string(), z.array(z.number())) }),
]);
export type WorkerReply = { type: 'ready'; pid: number } | { type: 'listening'; port: number } | { type: 'configured' } | { type: 'yields'; log: YieldLog };

/** Harness -> bench/idle-clients.ts. */
export const idleRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('sessions'), url: z.string(), count: z.number().int().positive(), shared: z.boolean() }),
  z.object({ type: z.literal('open'), url: z.string(), concurrency: z.number().int().positive() }),
  z.object({ type: z.literal('close') }),
]);
export type IdleRequest = z.infer<typeof idleRequestSchema>;

/** bench/idle-clients.ts -> harness. */
export const idleReplySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('sessions-ready'), sessions: z.number(), ms: z.number(), failed: z.number() }),
  z.object({
    type: z.literal('opened'),
    opened: z.number(),
    ready: z.number(),
    failed: z.number(),
    openMs: z.number(),
    readyMs: z.number(),
    firstError: z.string().optional(),
  }),
]);
export type IdleReply = z.infer<typeof idleReplySchema>;

/** bench/echo-server.ts -> harness. */
export const echoReplySchema = z.object({ type: z.literal('listening'), port: z.number() });
