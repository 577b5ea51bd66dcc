/**
 * The timeouts of one attempt: first token, idle gap between chunks, and the whole generation's
 * deadline (shared by all attempts). When a timer fires it records why and aborts the HTTP
 * request; the failure that follows (a rejected request or read) is then reported as that timeout.
 */

export type Expiry = 'first_token' | 'idle' | 'total';

/**
 * The phase timer is lazy: a streamed answer re-arms it for every chunk, and clearing and
 * setting a timer per chunk cost more CPU than the rest of the chunk's handling. Re-arming only
 * moves a deadline; when the timer fires it checks the deadline and sleeps again if it moved.
 */
export class Watchdog {
  expired: Expiry | undefined;
  private phase: 'first_token' | 'idle' | undefined;
  private phaseDeadline = 0;
  /** When the phase timer fires: it must never be later than the deadline. */
  private phaseTimerAt = 0;
  private phaseTimer: NodeJS.Timeout | undefined;
  private totalTimer: NodeJS.Timeout | undefined;

  constructor(private readonly abort: () => void) {}

  /** The whole generation's deadline (shared by all attempts). */
  startTotal(deadline: number): void {
    this.totalTimer = setTimeout(() => this.expire('total'), Math.max(0, deadline - Date.now()));
  }

  /** (Re)starts the first-token or idle timer. */
  arm(kind: 'first_token' | 'idle', ms: number): void {
    this.phase = kind;
    this.phaseDeadline = performance.now() + ms;
    // Moving the deadline later (every chunk of a stream) leaves the timer alone.
    if (this.phaseTimer !== undefined && this.phaseTimerAt <= this.phaseDeadline) return;
    this.schedule(ms);
  }

  /** Stops the phase timer, e.g. while the consumer holds a chunk: its slowness is not the model's. */
  disarm(): void {
    this.phase = undefined;
  }

  clear(): void {
    this.phase = undefined;
    if (this.phaseTimer !== undefined) clearTimeout(this.phaseTimer);
    this.phaseTimer = undefined;
    if (this.totalTimer !== undefined) clearTimeout(this.totalTimer);
    this.totalTimer = undefined;
  }

  private schedule(ms: number): void {
    if (this.phaseTimer !== undefined) clearTimeout(this.phaseTimer);
    this.phaseTimerAt = performance.now() + ms;
    this.phaseTimer = setTimeout(() => this.check(), ms);
  }

  private check(): void {
    this.phaseTimer = undefined;
    const phase = this.phase;
    if (phase === undefined) return;
    const left = this.phaseDeadline - performance.now();
    if (left > 0) this.schedule(left);
    else this.expire(phase);
  }

  private expire(kind: Expiry): void {
    this.expired ??= kind;
    this.abort();
  }
}
