/**
 * The local model: llama.cpp in this process through node-llama-cpp, so `npm start` answers with no
 * API key and no other service.
 *
 * One model and one context per process (runtime.ts). The context holds `parallel` sequences
 * (independent KV caches evaluated in shared batches); each generation borrows one, and requests
 * beyond that wait in a FIFO queue (sequence-pool.ts) without holding up the streams that are
 * running. A sequence keeps its KV cache when it is handed back: node-llama-cpp reuses the longest
 * common prefix, so the shared system prompt (and a whole conversation, when the same sequence
 * serves its next turn) is not evaluated again. A prompt is measured before it runs (prompt.ts).
 */
import { basename } from 'node:path';
import { LlamaChatSession, type LlamaContextSequence } from 'node-llama-cpp';
import type { ModelConfig } from '../../config/config.js';
import { ErrorCodes, ModelError } from '../../contracts/errors.js';
import type { GenerateRequest, ModelProvider, ProviderLogger } from '../provider.js';
import { estimateTokens } from '../token-estimate.js';
import { parseModelUri } from './model-files.js';
import { answerRoom, contextShiftSize, toChatHistory, type Prompt } from './prompt.js';
import { llamaLogSinks, loadModel, toModelError, type Loaded, type LocalProviderOptions } from './runtime.js';
import { ChunkQueue } from './sequence-pool.js';

export interface LocalProviderStats {
  readonly sequences: number;
  readonly busy: number;
  readonly waiting: number;
}

export class LocalLlamaProvider implements ModelProvider {
  private loaded: Loaded | undefined;
  private starting: Promise<void> | undefined;
  private startError: ModelError | undefined;
  private closing: Promise<void> | undefined;
  private readonly closeController = new AbortController();
  /** Generations still holding a sequence (also after their consumer stopped listening). */
  private readonly running = new Set<Promise<void>>();
  private displayName: string;

  constructor(
    private readonly config: ModelConfig,
    private readonly logger: ProviderLogger,
    private readonly options: LocalProviderOptions = {},
  ) {
    this.displayName = `local:${modelFileStem(config)}`;
  }

  get name(): string {
    return this.displayName;
  }

  get stats(): LocalProviderStats {
    const pool = this.loaded?.pool;
    return { sequences: pool?.size ?? 0, busy: pool?.busy ?? 0, waiting: pool?.waiting ?? 0 };
  }

  /** Loads the model (downloading it first when needed). Safe to call again after a failure. */
  start(): Promise<void> {
    if (this.closeController.signal.aborted) return Promise.reject(shuttingDown());
    if (this.loaded !== undefined) return Promise.resolve();
    this.starting ??= this.load().then(
      (loaded) => {
        this.displayName = `local:${stem(loaded.path)}`;
        this.loaded = loaded;
        this.startError = undefined;
      },
      (error: unknown) => {
        llamaLogSinks.delete(this.logger);
        this.startError = toModelError(error, 'load');
        this.starting = undefined;
        throw this.startError;
      },
    );
    return this.starting;
  }

  async *generate(request: GenerateRequest): AsyncGenerator<string> {
    const loaded = this.requireLoaded();
    const prompt = toChatHistory(request.turns);
    // Measured before waiting for a sequence: a request that cannot fit should not queue.
    const maxTokens = answerRoom(loaded, prompt, this.config.maxTokens);
    if (request.signal.aborted) return;
    const sequence = await loaded.pool.acquire(request.signal);
    if (sequence === undefined) {
      if (this.closeController.signal.aborted && !request.signal.aborted) throw shuttingDown();
      return;
    }
    const run = this.startRun(loaded, sequence, prompt, maxTokens, request.signal);
    try {
      yield* run.chunks;
    } finally {
      // The consumer may have stopped listening early (break, error): stop generating for nobody.
      run.stop();
    }
  }

  countTokens(text: string): number {
    // Before the model is loaded: the estimate remote models get.
    if (this.loaded === undefined) return estimateTokens(text);
    // trimLeadingSpace: SentencePiece tokenizers would otherwise count a space that is not there.
    return this.loaded.model.tokenize(text, false, 'trimLeadingSpace').length;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------

  private requireLoaded(): Loaded {
    if (this.closeController.signal.aborted) throw shuttingDown();
    if (this.loaded !== undefined) return this.loaded;
    throw this.startError ?? new ModelError(ErrorCodes.modelUnavailable, 'The local model is still loading; try again shortly.', true);
  }

  private load(): Promise<Loaded> {
    llamaLogSinks.add(this.logger);
    return loadModel(this.config, this.options, this.logger, this.closeController.signal);
  }

  private startRun(
    loaded: Loaded,
    sequence: LlamaContextSequence,
    { history, prompt }: Prompt,
    maxTokens: number,
    requestSignal: AbortSignal,
  ): { chunks: ChunkQueue; stop: () => void } {
    const stopper = new AbortController();
    const signal = AbortSignal.any([requestSignal, stopper.signal, this.closeController.signal]);
    const chunks = new ChunkQueue();
    // The consumer hears of a stop at once; llama.cpp finishes its current step in the background.
    const onAbort = (): void => {
      if (this.closeController.signal.aborted && !requestSignal.aborted) chunks.fail(shuttingDown());
      else chunks.end();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const session = new LlamaChatSession({ contextSequence: sequence, chatWrapper: loaded.chatWrapper, contextShift: { size: contextShiftSize(loaded.context) } });
    const run = (async () => {
      let failure: ModelError | undefined;
      try {
        session.setChatHistory(history);
        await session.prompt(prompt, {
          onTextChunk: (text) => chunks.push(text),
          signal,
          stopOnAbortSignal: true,
          maxTokens,
          temperature: this.config.temperature,
          topP: this.config.topP,
          customStopTriggers: this.config.stop.length === 0 ? undefined : [...this.config.stop],
        });
      } catch (error) {
        failure = toModelError(error, 'generate');
        if (!signal.aborted) this.logger.error({ err: error }, 'local generation failed');
      }
      signal.removeEventListener('abort', onAbort);
      await this.returnSequence(loaded, sequence, session, failure !== undefined);
      // Only now: a caller that starts its next request on hearing "done" finds the sequence free.
      if (failure === undefined || signal.aborted) chunks.end();
      else chunks.fail(failure);
    })();
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
    return { chunks, stop: () => stopper.abort() };
  }

  private async returnSequence(loaded: Loaded, sequence: LlamaContextSequence, session: LlamaChatSession, failed: boolean): Promise<void> {
    try {
      session.dispose();
      // After a failure the cache's state is unknown; an empty one is always right.
      if (failed) await sequence.clearHistory();
    } catch (error) {
      this.logger.warn({ err: error }, 'could not reset a sequence after a failure');
    } finally {
      loaded.pool.release(sequence);
    }
  }

  private async shutdown(): Promise<void> {
    this.closeController.abort();
    this.loaded?.pool.close();
    await this.starting?.catch(() => undefined);
    const loaded = this.loaded;
    llamaLogSinks.delete(this.logger);
    if (loaded === undefined) return;
    loaded.pool.close();
    await Promise.allSettled([...this.running]);
    // The Llama runtime itself is shared and stays (see runtime.ts); the memory is in these two.
    await loaded.context.dispose();
    await loaded.model.dispose();
  }
}

function stem(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}

function modelFileStem(config: ModelConfig): string {
  if (config.modelPath !== undefined) return stem(config.modelPath);
  try {
    return stem(parseModelUri(config.modelUri).relativePath);
  } catch {
    return 'model';
  }
}

function shuttingDown(): ModelError {
  return new ModelError(ErrorCodes.shuttingDown, 'The local model was closed (worker shutting down).', true);
}
