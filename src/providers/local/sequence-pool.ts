/**
 * Concurrency of the local model: the context's sequences shared by the generations (a FIFO queue
 * of waiters beyond them), and the bridge that hands a generation's text to its consumer.
 */
import type { LlamaContextSequence } from 'node-llama-cpp';

/**
 * Sequences free for a generation, and the requests waiting for one (first come, first served).
 * A waiter whose signal aborts leaves the queue; `close` sends every waiter away.
 */
export class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: { resolve: (sequence: LlamaContextSequence | undefined) => void }[] = [];
  private closed = false;
  readonly size: number;

  constructor(sequences: LlamaContextSequence[]) {
    this.free = [...sequences];
    this.size = sequences.length;
  }

  get busy(): number {
    return this.size - this.free.length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  acquire(signal: AbortSignal): Promise<LlamaContextSequence | undefined> {
    if (this.closed || signal.aborted) return Promise.resolve(undefined);
    const sequence = this.free.pop();
    if (sequence !== undefined) return Promise.resolve(sequence);
    return new Promise((resolve) => {
      const waiter = {
        resolve: (value: LlamaContextSequence | undefined) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        waiter.resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(sequence: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next !== undefined && !this.closed) next.resolve(sequence);
    else this.free.push(sequence);
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.resolve(undefined);
  }
}

/**
 * Bridges node-llama-cpp's callback to an async iterator. The callback cannot be paused (node-llama-cpp
 * does not await it), so instead of queueing one string per token for a slow reader, pending text is
 * merged and handed over whole at the next read: memory stays the size of the answer text and a slow
 * consumer gets fewer, larger chunks.
 */
export class ChunkQueue implements AsyncIterable<string> {
  private pending = '';
  private finished = false;
  private error: unknown;
  private wake: (() => void) | undefined;

  push(text: string): void {
    if (this.finished || text === '') return;
    this.pending += text;
    this.notify();
  }

  end(): void {
    this.finished = true;
    this.notify();
  }

  fail(error: unknown): void {
    if (this.finished) return;
    this.error = error;
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (;;) {
      if (this.pending !== '') {
        const text = this.pending;
        this.pending = '';
        yield text;
        continue;
      }
      if (this.error !== undefined) throw this.error;
      if (this.finished) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
