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
  z.object({ type: z.literal('configured') }),
  z.object({ type: z.literal('yields'), log: z.record(z.string(), z.array(z.number())) }),
]);
export type WorkerReply = { type: 'ready'; pid: number } | { type: 'configured' } | { type: 'yields'; log: YieldLog };
