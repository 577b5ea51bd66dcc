/**
 * One worker's turn at one session: while it holds the session's lease it answers the unanswered
 * turns, oldest first, each seeing the answers before it, until none is left or other sessions
 * wait for a slot (then it yields after the answer it committed, so sessions take turns). Streams
 * the answer in batches and commits it exactly once; a stop request, a lost lease or a shutdown
 * end it early.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCodes, ParleyError, type ErrorCode } from '../contracts/errors.js';
import type { MessageRecord } from '../contracts/protocol.js';
import type { ModelProvider } from '../providers/provider.js';
import type { AnswerStore, TurnOutcome } from '../store/answer-store.js';
import { errorRef, redactSecrets, safeError, tokenTag, type Logger } from '../shared/logger.js';
import { DeltaBatcher } from './batcher.js';
import { fitHistory } from './history-window.js';
import { conversationFor } from './prompt.js';

export interface DrainSettings {
  readonly systemPrompt: string;
  readonly historyTokens: number;
  readonly flushIntervalMs: number;
  readonly flushMaxChars: number;
}

export interface DrainDependencies {
  readonly store: AnswerStore;
  readonly provider: ModelProvider;
  readonly settings: DrainSettings;
  readonly logger: Logger;
  readonly metrics?: DrainMetrics;
  /** True when other sessions wait for a worker slot: the drain then yields after each answer. */
  readonly othersWaiting: () => Promise<boolean>;
  /** Told the time from starting each committed turn to committing it (for wait estimates). */
  readonly onAnswered: (ms: number) => void;
}

/** What a drain reports about its turns (the worker's Prometheus metrics). */
export interface DrainMetrics {
  turn(outcome: 'answer' | 'stopped' | 'error'): void;
  failure(code: ErrorCode): void;
  /** A generation that produced text: seconds to its first text, its length, seconds from first to last text. */
  generated(firstTokenSeconds: number, chars: number, streamSeconds: number): void;
}

/**
 * Why a drain ended: nothing left; another worker owned the session from the start; it expired;
 * we gave it back (shutdown, or yielding to waiting sessions: either way the session goes to the
 * back of the queue); or our lease ran out while we held it (a stall longer than the lease), so
 * the turn in progress was dropped uncommitted and must be handed back.
 */
export type DrainEnd = 'drained' | 'owned-elsewhere' | 'expired' | 'handed-back' | 'lease-lost';

interface TurnResult {
  readonly outcome: TurnOutcome;
  readonly unflushed: string;
}

export class SessionDrain {
  readonly owner = randomUUID();
  /**
   * Looks at the session's unanswered turns sent so far (each startTurn, and each commit, which
   * also looks for the next turn); an entry attached before the last one is covered by it.
   */
  startsSent = 0;
  private generation: AbortController | undefined;
  private currentTurn = 0;
  private stopRequested = false;
  private leaseLost = false;
  private handingBack = false;

  constructor(
    readonly token: string,
    private readonly deps: DrainDependencies,
  ) {}

  /** The user asked to stop `turn`; ignored unless that turn is being answered right now. */
  cancel(turn: number): void {
    if (turn !== this.currentTurn) return;
    this.stopRequested = true;
    this.generation?.abort();
  }

  loseLease(): void {
    this.leaseLost = true;
    this.generation?.abort();
  }

  handBack(): void {
    this.handingBack = true;
    this.generation?.abort();
  }

  async run(): Promise<DrainEnd> {
    const { store } = this.deps;
    for (;;) {
      if (this.handingBack) return 'handed-back';
      this.startsSent += 1;
      const started = performance.now();
      const start = await store.startTurn(this.token, this.owner);
      if (start.status === 'idle') return 'drained';
      if (start.status === 'expired') return 'expired';
      // The first look may find another worker's lease; a later one finds that ours ran out.
      if (start.status !== 'ok') return this.startsSent === 1 ? 'owned-elsewhere' : 'lease-lost';
      this.currentTurn = start.turn;
      this.stopRequested = start.cancelled;
      const result = start.cancelled
        ? { outcome: { kind: 'answer', text: '', stopped: true } as const, unflushed: '' }
        : await this.answerReadable(start.turn, start.history, start.malformedRecords);
      if (result === null) return this.leaseLost ? 'lease-lost' : 'handed-back';
      this.startsSent += 1;
      const status = await store.finishTurn(this.token, this.owner, start.turn, result.outcome, result.unflushed);
      if (status === 'expired') return 'expired';
      if (status !== 'ok' && status !== 'drained') return 'lease-lost';
      this.deps.onAnswered(performance.now() - started);
      this.deps.logger.debug({ session: tokenTag(this.token), turn: start.turn, outcome: result.outcome.kind }, 'turn committed');
      this.deps.metrics?.turn(result.outcome.kind === 'error' ? 'error' : result.outcome.stopped ? 'stopped' : 'answer');
      // Nothing left: ending here (not yielding) keeps a session with no work out of the queue.
      if (status === 'drained') return 'drained';
      if (await this.deps.othersWaiting()) return 'handed-back';
    }
  }

  private async answerReadable(turn: number, history: readonly MessageRecord[], malformedRecords: number): Promise<TurnResult | null> {
    if (malformedRecords > 0) {
      this.deps.logger.error({ session: tokenTag(this.token), turn, malformedRecords }, 'history holds malformed records; they are left out of the prompt');
    }
    if (!history.some((record) => record.source === 'human' && record.seq === turn)) {
      return { outcome: this.failed(turn, ErrorCodes.internal, 'the message could not be read back from storage'), unflushed: '' };
    }
    return this.answer(turn, history);
  }

  /** The turn's outcome, or null when it was interrupted (lease lost, shutdown) and must not be committed. */
  private async answer(turn: number, history: readonly MessageRecord[]): Promise<TurnResult | null> {
    const { provider, settings, store } = this.deps;
    const controller = new AbortController();
    this.generation = controller;
    const batcher = new DeltaBatcher(
      async (text) => {
        const reply = await store.appendDelta(this.token, this.owner, turn, text);
        if (reply.status === 'lost') this.loseLease();
        else if (reply.cancelled) this.cancel(turn);
      },
      settings.flushIntervalMs,
      settings.flushMaxChars,
    );
    let text = '';
    let failure: TurnOutcome | undefined;
    try {
      const turns = fitHistory(conversationFor(history, turn, settings.systemPrompt), settings.historyTokens, (value) =>
        provider.countTokens(value),
      );
      const asked = performance.now();
      let first: number | undefined;
      for await (const chunk of provider.generate({ turns, signal: controller.signal })) {
        if (controller.signal.aborted) break;
        first ??= performance.now();
        text += chunk;
        batcher.push(chunk);
      }
      if (first !== undefined) this.deps.metrics?.generated((first - asked) / 1000, text.length, (performance.now() - first) / 1000);
    } catch (error) {
      if (!controller.signal.aborted) failure = this.outcomeOfFailure(turn, error);
    } finally {
      this.generation = undefined;
    }
    const unflushed = await batcher.finish();
    if (this.leaseLost || (controller.signal.aborted && !this.stopRequested)) return null;
    if (failure !== undefined) return { outcome: failure, unflushed: '' };
    if (this.stopRequested) return { outcome: { kind: 'answer', text, stopped: true }, unflushed };
    if (text.trim() === '') {
      return { outcome: this.failed(turn, ErrorCodes.modelFailed, 'the language model returned an empty answer'), unflushed: '' };
    }
    return { outcome: { kind: 'answer', text, stopped: false }, unflushed };
  }

  private outcomeOfFailure(turn: number, error: unknown): TurnOutcome {
    if (error instanceof ParleyError) return this.failed(turn, error.code, error.message);
    return this.failed(turn, ErrorCodes.internal, 'the answer failed unexpectedly', error);
  }

  /**
   * A failed turn as users and operators see it: users get the fixed text of `code` (from the
   * contracts) and a reference; the detail, which may quote upstream bodies, paths and hosts,
   * goes only to the log at warn, under that reference.
   */
  private failed(turn: number, code: ErrorCode, detail: string, error?: unknown): TurnOutcome {
    const ref = errorRef();
    const fields = { ref, code, session: tokenTag(this.token), turn, detail: redactSecrets(detail) };
    this.deps.logger.warn(error === undefined ? fields : { ...fields, err: safeError(error) }, 'answer failed');
    this.deps.metrics?.failure(code);
    return { kind: 'error', code, ref };
  }
}
