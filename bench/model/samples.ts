/** bench:model's figures: one sample per answer, the CPU each process spent on it, and medians per variant. */
import { schedTimes, type SchedTimes } from '../lib/processes.js';
import { median, round2 } from '../lib/stats.js';
import type { Timed, Variant } from './variants.js';

export type ProcessName = 'bench' | 'worker' | 'gateway' | 'redis';
export const PROCESS_NAMES: readonly ProcessName[] = ['bench', 'worker', 'gateway', 'redis'];

export type CpuSnapshot = Partial<Record<ProcessName, SchedTimes>>;

export interface Sample {
  readonly round: number;
  readonly variant: Variant;
  /** Position of this variant within its round (0, 1, 2). */
  readonly position: number;
  readonly tokens: number;
  readonly chars: number;
  /** Request → end of the answer. */
  readonly totalMs: number;
  /** Request → first text. */
  readonly ttftMs: number;
  /** Request → last text (for the pipeline, the last delta; `done` may come after it). */
  readonly lastTextMs: number;
  readonly tokensPerSecond: number;
  /** Tokens after the first ÷ time from first to last text: the streaming rate without the start-up. */
  readonly decodeTokensPerSecond: number;
  /** Text pieces received (callbacks, chunks or delta frames). */
  readonly pieces: number;
  /** CPU each process used during this answer, and time its threads were runnable but waited for a CPU. */
  readonly cpu: CpuSnapshot;
}

export interface VariantSummary {
  readonly rounds: number;
  readonly tokens: number;
  readonly medianTokensPerSecond: number;
  readonly medianDecodeTokensPerSecond: number;
  readonly medianTotalMs: number;
  readonly medianTtftMs: number;
  /** Last text → end of the answer (the pipeline's `done` after its last delta). */
  readonly medianTailMs: number;
  readonly medianPieces: number;
  /** Median CPU per answer of each process (see Sample.cpu). */
  readonly cpu: CpuSnapshot;
}

export function cpuSnapshot(pids: Partial<Record<ProcessName, number>>): CpuSnapshot {
  const snapshot: CpuSnapshot = {};
  for (const [name, pid] of Object.entries(pids) as Array<[ProcessName, number | undefined]>) {
    const use = pid === undefined ? undefined : schedTimes(pid);
    if (use !== undefined) snapshot[name] = use;
  }
  return snapshot;
}

export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  const delta: CpuSnapshot = {};
  for (const [name, end] of Object.entries(after) as Array<[ProcessName, SchedTimes]>) {
    const start = before[name];
    if (start !== undefined) delta[name] = { runMs: round2(end.runMs - start.runMs), waitMs: round2(end.waitMs - start.waitMs) };
  }
  return delta;
}

export function toSample(round: number, variant: Variant, position: number, timed: Timed, cpu: CpuSnapshot, countTokens: (text: string) => number): Sample {
  const tokens = countTokens(timed.text);
  const totalMs = timed.endedAt - timed.startedAt;
  const streamMs = timed.lastAt - timed.firstAt;
  return {
    round,
    variant,
    position,
    tokens,
    chars: timed.text.length,
    totalMs: round2(totalMs),
    ttftMs: round2(timed.firstAt - timed.startedAt),
    lastTextMs: round2(timed.lastAt - timed.startedAt),
    tokensPerSecond: round2(tokens / (totalMs / 1000)),
    decodeTokensPerSecond: round2(streamMs > 0 ? (tokens - 1) / (streamMs / 1000) : Number.NaN),
    pieces: timed.pieces,
    cpu,
  };
}

export function summarizeVariant(samples: readonly Sample[], variant: Variant): VariantSummary {
  const mine = samples.filter((sample) => sample.variant === variant);
  const med = (of: (sample: Sample) => number) => round2(median(mine.map(of)));
  return {
    rounds: mine.length,
    tokens: med((sample) => sample.tokens),
    medianTokensPerSecond: med((sample) => sample.tokensPerSecond),
    medianDecodeTokensPerSecond: med((sample) => sample.decodeTokensPerSecond),
    medianTotalMs: med((sample) => sample.totalMs),
    medianTtftMs: med((sample) => sample.ttftMs),
    medianTailMs: med((sample) => sample.totalMs - sample.lastTextMs),
    medianPieces: med((sample) => sample.pieces),
    cpu: Object.fromEntries(
      PROCESS_NAMES.filter((name) => mine.some((sample) => sample.cpu[name] !== undefined)).map((name) => [
        name,
        { runMs: med((sample) => sample.cpu[name]?.runMs ?? 0), waitMs: med((sample) => sample.cpu[name]?.waitMs ?? 0) },
      ]),
    ),
  };
}

/** Median over rounds of (a's rate ÷ b's rate in the same round): pairs cancel slow drifts. */
export function pairedRatio(samples: readonly Sample[], a: Variant, b: Variant): number {
  const ratios: number[] = [];
  for (const sample of samples) {
    if (sample.variant !== a) continue;
    const other = samples.find((candidate) => candidate.variant === b && candidate.round === sample.round);
    if (other !== undefined) ratios.push(sample.tokensPerSecond / other.tokensPerSecond);
  }
  return median(ratios);
}
