/**
 * Distribution summaries. Percentiles use the nearest-rank method on the sorted samples: no
 * interpolation, so a reported p99 is a latency some turn really had.
 */
export interface Distribution {
  readonly count: number;
  readonly mean: number;
  readonly min: number;
  /** Same value as p50; both names are kept because the report speaks of "median" for scalars. */
  readonly median: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export const EMPTY_DISTRIBUTION: Distribution = { count: 0, mean: 0, min: 0, median: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };

function rank(sorted: Float64Array, fraction: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index] ?? 0;
}

/** Rounds to 3 decimals: milliseconds to the microsecond, which is all a JS timer can resolve. */
export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Rounds to 2 decimals: bench:model's rates and milliseconds, whose runs vary far more than that. */
export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

export function summarize(values: ArrayLike<number>): Distribution {
  if (values.length === 0) return EMPTY_DISTRIBUTION;
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  const p50 = round3(rank(sorted, 0.5));
  return {
    count: sorted.length,
    mean: round3(sum / sorted.length),
    min: round3(sorted[0] ?? 0),
    median: p50,
    p50,
    p90: round3(rank(sorted, 0.9)),
    p95: round3(rank(sorted, 0.95)),
    p99: round3(rank(sorted, 0.99)),
    max: round3(sorted[sorted.length - 1] ?? 0),
  };
}

/** Median of a few repeated scalar figures (e.g. per-second throughput buckets). */
export function median(values: readonly number[]): number {
  return summarize(values).median;
}

/** Counts events per whole second of [startMs, endMs) — for a throughput's spread over time. */
export function perSecond(timesMs: readonly number[], startMs: number, endMs: number): number[] {
  const buckets = new Array<number>(Math.max(1, Math.floor((endMs - startMs) / 1000))).fill(0);
  for (const time of timesMs) {
    const bucket = Math.floor((time - startMs) / 1000);
    if (bucket >= 0 && bucket < buckets.length) buckets[bucket] = (buckets[bucket] ?? 0) + 1;
  }
  return buckets;
}

/** Monotonic clock in milliseconds that is comparable across processes on one Linux machine. */
export function hrNowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
