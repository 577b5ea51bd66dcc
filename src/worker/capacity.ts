/**
 * A worker's report of its capacity to the gateways: its slots and a moving average of its time
 * per answer, written every REPORT_MS into one hash (one field per worker). Gateways turn it into
 * queue wait estimates (queued frames, admission control); a report older than a few intervals is
 * of a worker that stopped, and a stopping worker removes its own.
 */
import type { WorkerCapacity } from '../contracts/records.js';

export const CAPACITY_REPORT_MS = 2000;
/** Weight of the newest answer in the moving average: recent speed matters, one outlier little. */
const SMOOTHING = 0.2;

/** The commands a capacity report takes. */
export interface CapacityRedis {
  hSet(key: string, field: string, value: string): Promise<unknown>;
  hDel(key: string, field: string): Promise<unknown>;
}

export class CapacityReporter {
  private answerMs = 0;

  constructor(
    private readonly redis: CapacityRedis,
    private readonly key: string,
    private readonly consumer: string,
    private readonly slots: number,
  ) {}

  recordAnswer(ms: number): void {
    this.answerMs = this.answerMs === 0 ? ms : this.answerMs + SMOOTHING * (ms - this.answerMs);
  }

  async report(): Promise<void> {
    const report: WorkerCapacity = { slots: this.slots, answerMs: Math.round(this.answerMs), at: Date.now() };
    await this.redis.hSet(this.key, this.consumer, JSON.stringify(report));
  }

  async withdraw(): Promise<void> {
    await this.redis.hDel(this.key, this.consumer);
  }
}
