/** What every phase of a benchmark run gets from the harness. */
import type { BenchModelSettings } from '../bench-model.js';
import type { BenchOptions } from './options.js';
import type { ProcessGroup } from './processes.js';
import type { RawRedis } from './resp.js';
import type { RedisEndpoint, Stack } from './stack.js';

export interface PhaseContext {
  readonly options: BenchOptions;
  readonly redis: RedisEndpoint;
  /** The harness's own Redis connection (INFO, MEMORY USAGE, preparing data). */
  readonly admin: RawRedis;
  readonly group: ProcessGroup;
  readonly signal: AbortSignal;
  /** Unique per run, put into every message text. */
  readonly tag: string;
  /** The model the throughput and latency runs use (instant unless --rate says otherwise). */
  readonly baseModel: BenchModelSettings;
  log(line: string): void;
}

export interface StackContext extends PhaseContext {
  readonly stack: Stack;
}

/** "1 gateway + 1 worker" */
export function topology(gateways: number, workers: number | null): string {
  const g = `${gateways} gateway${gateways === 1 ? '' : 's'}`;
  return workers === null ? `${g} (target)` : `${g} + ${workers} worker${workers === 1 ? '' : 's'}`;
}
