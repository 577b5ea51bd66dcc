/** Prometheus metrics of a worker, served on its private listener (WORKER_METRICS_PORT). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../contracts/errors.js';
import type { DrainMetrics } from './session-drain.js';

export class WorkerMetrics implements DrainMetrics {
  readonly registry = new Registry();
  readonly queueLag = new Histogram({
    name: 'parley_worker_queue_lag_seconds',
    help: 'Time from a queue entry being written to a worker taking it',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly turns = new Counter({ name: 'parley_worker_turns_total', help: 'Turns committed, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly modelErrors = new Counter({ name: 'parley_worker_model_errors_total', help: 'Failed turns, by error code', labelNames: ['code'], registers: [this.registry] });
  readonly firstToken = new Histogram({
    name: 'parley_worker_time_to_first_token_seconds',
    help: 'Time from asking the model to its first text',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly charsPerSecond = new Histogram({
    name: 'parley_worker_output_chars_per_second',
    help: 'Answer characters per second of generation, after the first text',
    buckets: [10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [this.registry],
  });
  readonly takeovers = new Counter({ name: 'parley_worker_takeovers_total', help: 'Queue entries taken over from workers that stopped responding', registers: [this.registry] });
  readonly activeSessions = new Gauge({ name: 'parley_worker_active_sessions', help: 'Sessions this worker is answering', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  turn(outcome: 'answer' | 'stopped' | 'error'): void {
    this.turns.inc({ outcome });
  }

  failure(code: ErrorCode): void {
    this.modelErrors.inc({ code });
  }

  generated(firstTokenSeconds: number, chars: number, streamSeconds: number): void {
    this.firstToken.observe(firstTokenSeconds);
    if (streamSeconds > 0) this.charsPerSecond.observe(chars / streamSeconds);
  }
}
