/**
 * Turns a stream of model chunks into few Redis writes: the first chunk goes out at the end of the
 * current event-loop turn (so the first word shows without delay, while an answer that is already
 * complete by then is left whole to the final commit), later chunks are gathered and written at
 * most once per interval, or sooner when maxChars have piled up. Writes never overlap, so Redis
 * work per answer grows with its duration, not with its token count.
 */
export type Flush = (text: string) => Promise<void>;

export class DeltaBatcher {
  private buffer = '';
  private lastFlushAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  /** A write is queued but has not taken the buffer yet: it will take whatever arrives meanwhile. */
  private queued = false;
  private failure: unknown;

  constructor(
    private readonly flush: Flush,
    private readonly intervalMs: number,
    private readonly maxChars: number,
  ) {}

  push(text: string): void {
    if (this.failure !== undefined) throw this.failure;
    if (text === '') return;
    this.buffer += text;
    if (this.buffer.length >= this.maxChars || Date.now() - this.lastFlushAt >= this.intervalMs) {
      this.immediate ??= setImmediate(() => this.flushNow());
    } else {
      this.timer ??= setTimeout(() => this.flushNow(), this.lastFlushAt + this.intervalMs - Date.now());
    }
  }

  /** Waits for writes in flight and hands back what was never written (for the final commit). */
  async finish(): Promise<string> {
    this.clearTimer();
    await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
    const rest = this.buffer;
    this.buffer = '';
    return rest;
  }

  private flushNow(): void {
    this.clearTimer();
    // One queued write is enough: a second one would run right after it, ignoring the interval.
    if (this.buffer === '' || this.queued) return;
    this.queued = true;
    this.inFlight = this.inFlight.then(() => {
      this.queued = false;
      const text = this.buffer;
      this.buffer = '';
      this.lastFlushAt = Date.now();
      if (text === '' || this.failure !== undefined) return;
      return this.flush(text).catch((error: unknown) => {
        this.failure = error;
      });
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }
}
