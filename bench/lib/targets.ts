/**
 * Issue 5's targets for this 2-core machine, checked against a run's figures. A target is "met"
 * true/false, or null when the run did not measure it (phase skipped) — never asserted in tests.
 */
import type { BenchResult } from '../harness.js';

export interface TargetCheck {
  readonly figure: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
  /** Set when the run's size differs from the target's (e.g. fewer clients, smoke preset). */
  readonly caveat?: string;
}

const fmt = (value: number, digits = 1) => value.toLocaleString('en-US', { maximumFractionDigits: digits });

function throughputChecks(result: BenchResult): TargetCheck[] {
  const clients = result.meta.options.clients;
  const caveat = clients === 100 ? undefined : `run with ${clients} clients; the target is for 100`;
  return result.throughput
    .filter((run) => run.gateways === 1)
    .map((run) => ({
      figure: `Throughput, 1 + 1, ${run.mode}`,
      target: '≥ 4,000 turns/s',
      measured: `${fmt(run.turnsPerSec, 0)} turns/s`,
      met: run.turnsPerSec >= 4000,
      ...(caveat === undefined ? {} : { caveat }),
    }));
}

function ceilingCheck(result: BenchResult): TargetCheck[] {
  const ceiling = result.ceiling;
  if (ceiling?.percentOfRedis == null || ceiling.redis === null) {
    return [{ figure: 'Throughput / Redis-bound ceiling', target: '≥ 50 %', measured: 'not measured', met: null }];
  }
  return [
    {
      figure: 'Throughput / Redis-bound ceiling',
      target: '≥ 50 %',
      measured: `${fmt(ceiling.percentOfRedis)} % (${fmt(ceiling.ourTurnsPerSec ?? 0, 0)} of ${fmt(ceiling.redis.turnsPerSec, 0)} turns/s)`,
      met: ceiling.percentOfRedis >= 50,
    },
  ];
}

function latencyChecks(result: BenchResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const run of result.latency) {
    if (run.offeredPerSec === 10) {
      checks.push({ figure: `Latency p50 at 10 turns/s, ${run.mode}`, target: '< 2 ms', measured: `${fmt(run.latencyMs.p50, 2)} ms`, met: run.latencyMs.count > 0 && run.latencyMs.p50 < 2 });
    }
    if (run.offeredPerSec === 1000) {
      checks.push({ figure: `Latency p99 at 1000 turns/s, ${run.mode}`, target: '< 20 ms', measured: `${fmt(run.latencyMs.p99, 2)} ms`, met: run.latencyMs.count > 0 && run.latencyMs.p99 < 20 });
    }
  }
  return checks;
}

function streamingCheck(result: BenchResult): TargetCheck[] {
  const streaming = result.streaming;
  if (streaming === null) return [{ figure: 'Streaming overhead p99', target: '< batch window + 5 ms', measured: 'not measured', met: null }];
  const limit = streaming.batchWindowMs + 5;
  return [{ figure: 'Streaming overhead p99', target: `< ${limit} ms (window ${streaming.batchWindowMs} ms + 5)`, measured: `${fmt(streaming.overheadMs.p99, 2)} ms`, met: streaming.overheadMs.count > 0 && streaming.overheadMs.p99 < limit }];
}

function lengthChecks(result: BenchResult): TargetCheck[] {
  const checks = result.redis?.lengthChecks ?? [];
  if (checks.length === 0) return [{ figure: 'Redis commands per answer vs length', target: 'independent beyond one per batch', measured: 'not measured', met: null }];
  return checks.map((check) => ({
    figure: `Redis round trips, ${check.longTokens} vs ${check.shortTokens} tokens, ${check.rate === 'instant' ? 'instant' : `${check.rate} tokens/s`}`,
    target: '≤ 1 extra per extra batch',
    measured: `+${fmt(check.extraRoundTrips, 2)} round trips for +${fmt(check.extraBatches, 2)} batches`,
    met: check.independentOfLength,
  }));
}

function connectionCheck(result: BenchResult): TargetCheck[] {
  const connections = result.connections;
  if (connections?.rssPerConnectionKiB == null) return [{ figure: 'Idle connections, memory each', target: '< 20 KB', measured: 'not measured', met: null }];
  const bytes = connections.rssPerConnectionKiB * 1024;
  const caveat = connections.requested === 10_000 ? undefined : `run with ${connections.requested} connections; the target is for 10,000`;
  return [
    {
      figure: `Idle connections (${fmt(connections.ready, 0)}), memory each`,
      target: '< 20 KB',
      measured: `${fmt(bytes / 1000, 1)} KB`,
      met: bytes < 20_000 && connections.ready === connections.requested,
      ...(caveat === undefined ? {} : { caveat }),
    },
  ];
}

/** Issue 10: ordinary users' time to answer with the largest flood against none, and Jain's index. */
function fairnessChecks(result: BenchResult): TargetCheck[] {
  const f = result.fairness;
  if (f === null) return [];
  const flooded = f.runs.at(-1);
  const caveat = f.durationS >= 10 ? undefined : `${f.durationS} s per run: few samples, the p99 is close to the maximum`;
  const checks: TargetCheck[] = [
    { figure: 'Fairness: flooded / calm answer time p50', target: '≤ 1.5', measured: f.ratioP50 === null ? 'not measured' : `× ${fmt(f.ratioP50, 2)}`, met: f.ratioP50 === null ? null : f.ratioP50 <= 1.5, ...(caveat === undefined ? {} : { caveat }) },
    { figure: 'Fairness: flooded / calm answer time p99', target: '≤ 1.5', measured: f.ratioP99 === null ? 'not measured' : `× ${fmt(f.ratioP99, 2)}`, met: f.ratioP99 === null ? null : f.ratioP99 <= 1.5, ...(caveat === undefined ? {} : { caveat }) },
  ];
  if (flooded !== undefined) {
    checks.push({ figure: "Fairness: Jain's index, ordinary users, largest flood", target: '≥ 0.95', measured: fmt(flooded.jain, 3), met: flooded.jain >= 0.95 });
  }
  return checks;
}

export function evaluateTargets(result: BenchResult): TargetCheck[] {
  return [...throughputChecks(result), ...ceilingCheck(result), ...latencyChecks(result), ...streamingCheck(result), ...lengthChecks(result), ...connectionCheck(result), ...fairnessChecks(result)];
}
