/**
 * BenchModelDouble: a benchmark double of a language model. It streams a fixed answer of K tokens
 * at a fixed rate (tokens per second, or "instant": all at once) whatever it is asked, so the
 * benchmark measures Parley and not a model.
 *
 * Streaming overhead needs the moment each chunk left the model. Putting a timestamp into the
 * chunk text would change the answer's size and make the client parse it; instead every token
 * has the same width (TOKEN_CHARS), so a client knows token i from its character offset alone,
 * and the double keeps the yield times in memory (one number pushed per chunk, nothing sent over
 * the network while the benchmark runs). The harness collects them afterwards over the worker's
 * IPC channel and joins them with the client's receive times by the message text, which the
 * harness makes unique per turn. Times come from process.hrtime (CLOCK_MONOTONIC), which is the
 * same clock in every process of one Linux machine.
 */
import type { ChatTurn, GenerateRequest, ModelProvider } from '../src/providers/provider.js';
import { hrNowMs } from './lib/stats.js';

/** Every token is exactly this many characters, so offsets in the answer identify tokens. */
export const TOKEN_CHARS = 4;
const WORDS = ['the ', 'cat ', 'sat ', 'and ', 'ran ', 'far ', 'now ', 'yes '] as const;

export type TokenRate = number | 'instant';

export interface BenchModelSettings {
  /** Tokens per answer (K). */
  readonly tokens: number;
  /** Tokens per second, or 'instant' (every token yielded at once, no timer). */
  readonly rate: TokenRate;
  /** Keep each chunk's yield time (for the streaming-overhead phase only: it costs memory). */
  readonly recordYields: boolean;
}

export const DEFAULT_BENCH_MODEL: BenchModelSettings = { tokens: 50, rate: 'instant', recordYields: false };

/** The fixed answer of `tokens` tokens, as the client should reassemble it. */
export function benchAnswer(tokens: number): string {
  let text = '';
  for (let index = 0; index < tokens; index += 1) text += WORDS[index % WORDS.length];
  return text;
}

/** The same answer as its tokens, for a server that sends one event per token. */
export function benchAnswerTokens(tokens: number): string[] {
  return Array.from({ length: tokens }, (_, index) => WORDS[index % WORDS.length] ?? '');
}

/** Yield times (hrNowMs) of each token, keyed by the user message that asked for the answer. */
export type YieldLog = Record<string, number[]>;

function lastUserText(turns: readonly ChatTurn[]): string {
  for (let index = turns.length - 1; index >= 0; index -= 1) {
    const turn = turns[index];
    if (turn?.role === 'user') return turn.content;
  }
  return '';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class BenchModelDouble implements ModelProvider {
  readonly name = 'bench-double';
  private settings: BenchModelSettings;
  private yields = new Map<string, number[]>();

  constructor(settings: BenchModelSettings = DEFAULT_BENCH_MODEL) {
    this.settings = settings;
  }

  get current(): BenchModelSettings {
    return this.settings;
  }

  /** Changes the answer length, rate or recording between benchmark phases (no restart needed). */
  configure(settings: BenchModelSettings): void {
    this.settings = settings;
    if (!settings.recordYields) this.yields.clear();
  }

  async start(): Promise<void> {}

  generate(request: GenerateRequest): AsyncIterable<string> {
    return this.stream(request, this.settings);
  }

  /** Same rough estimate as the remote providers: about four characters per token. */
  countTokens(text: string): number {
    return Math.ceil(text.length / TOKEN_CHARS);
  }

  /** Hands over and forgets the yield times recorded so far. */
  takeYieldLog(): YieldLog {
    const log = Object.fromEntries(this.yields);
    this.yields = new Map();
    return log;
  }

  async close(): Promise<void> {}

  private async *stream(request: GenerateRequest, settings: BenchModelSettings): AsyncGenerator<string> {
    const times: number[] | undefined = settings.recordYields ? [] : undefined;
    if (times !== undefined) this.yields.set(lastUserText(request.turns), times);
    const intervalMs = settings.rate === 'instant' ? 0 : 1000 / settings.rate;
    const startedAt = performance.now();
    for (let index = 0; index < settings.tokens; index += 1) {
      if (request.signal.aborted) return;
      // Tokens are due on a fixed schedule from the start, so timer lateness does not slow the
      // rate down: a late wake-up yields every token that has come due, one chunk each.
      const wait = startedAt + index * intervalMs - performance.now();
      if (wait >= 1) await sleep(wait, request.signal);
      if (request.signal.aborted) return;
      times?.push(hrNowMs());
      yield WORDS[index % WORDS.length] ?? '';
    }
  }
}
