/**
 * The local model: llama.cpp in this process through node-llama-cpp, so `npm start` answers with no
 * API key and no other service.
 *
 * One model and one context per process. The context holds `parallel` sequences (independent KV
 * caches evaluated in shared batches); each generation borrows one, and requests beyond that wait in
 * a FIFO queue here without holding up the streams that are running. A sequence keeps its KV cache
 * when it is handed back: node-llama-cpp reuses the longest common prefix, so the shared system
 * prompt (and a whole conversation, when the same sequence serves its next turn) is not evaluated
 * again.
 *
 * Context overflow: node-llama-cpp's own answer to a prompt longer than the context is to cut text
 * out of the conversation (even out of the user's message) and answer anyway, and a reply that
 * reaches the end of the context fails with an error after part of it was streamed. Neither is what
 * a chat user expects, so the prompt is measured first with the model's chat template and tokenizer:
 * if it leaves no room for an answer the request fails with `model_context_overflow` before any
 * token; otherwise the answer is capped at the room left, and ends like one that reached maxTokens.
 */
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import {
  getLlama,
  LlamaChatSession,
  LlamaLogLevel,
  resolveChatWrapper,
  type ChatHistoryItem,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
} from 'node-llama-cpp';
import type { ModelConfig } from '../../config/config.js';
import { ErrorCodes, ModelError } from '../../contracts/errors.js';
import type { ChatTurn, GenerateRequest, ModelProvider, ProviderLogger } from '../provider.js';
import { parseModelUri, resolveModelFile, type DownloadProgress } from './model-files.js';

export interface LocalProviderOptions {
  /** llama.cpp backend: "auto" uses Metal/CUDA/Vulkan when present; false forces the CPU. Default "auto". */
  readonly gpu?: 'auto' | false;
  /** Hugging Face endpoint for `hf:` URIs (tests, mirrors). */
  readonly hfEndpoint?: string;
  /** Download progress; by default it is logged every 10 %. */
  readonly onDownloadProgress?: DownloadProgress;
}

export interface LocalProviderStats {
  readonly sequences: number;
  readonly busy: number;
  readonly waiting: number;
}

/** What the model answers with at least; a prompt leaving less room than this is an overflow. */
const MIN_ANSWER_TOKENS = 16;

/** Threads for a machine with `cores` cores: one core stays free for the event loop and Redis I/O. */
export function defaultThreads(cores: number): number {
  return Math.max(1, Math.min(4, cores - 1));
}

interface Loaded {
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly chatWrapper: ChatWrapper;
  readonly pool: SequencePool;
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
        this.loaded = loaded;
        this.startError = undefined;
      },
      (error: unknown) => {
        logSinks.delete(this.logger);
        this.startError = toModelError(error, 'load');
        this.starting = undefined;
        throw this.startError;
      },
    );
    return this.starting;
  }

  async *generate(request: GenerateRequest): AsyncGenerator<string> {
    const loaded = this.requireLoaded();
    const { history, prompt } = toChatHistory(request.turns);
    // Measured before waiting for a sequence: a request that cannot fit should not queue.
    const maxTokens = this.answerRoom(loaded, history, prompt);
    if (request.signal.aborted) return;
    const sequence = await loaded.pool.acquire(request.signal);
    if (sequence === undefined) {
      if (this.closeController.signal.aborted && !request.signal.aborted) throw shuttingDown();
      return;
    }
    const run = this.startRun(loaded, sequence, { history, prompt, maxTokens }, request.signal);
    try {
      yield* run.chunks;
    } finally {
      // The consumer may have stopped listening early (break, error): stop generating for nobody.
      run.stop();
    }
  }

  countTokens(text: string): number {
    // Before the model is loaded: the usual ~4 characters per token of English text.
    if (this.loaded === undefined) return Math.ceil(text.length / 4);
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

  private async load(): Promise<Loaded> {
    const began = performance.now();
    logSinks.add(this.logger);
    const file = await resolveModelFile(this.config, {
      hfEndpoint: this.options.hfEndpoint,
      onProgress: this.options.onDownloadProgress ?? progressLogger(this.logger, this.config.modelUri),
      signal: this.closeController.signal,
    });
    if (file.origin === 'downloaded') {
      this.logger.info({ path: file.path, sha256: file.sha256 }, 'model downloaded (set LLM_MODEL_SHA256 to this digest to pin it)');
    }
    const llama = await sharedLlama(this.options.gpu ?? 'auto');
    return this.loadInto(llama, file.path, began);
  }

  private async loadInto(llama: Llama, path: string, began: number): Promise<Loaded> {
    const model = await llama.loadModel({ modelPath: path }).catch((error: unknown) => {
      throw new ModelError(
        ErrorCodes.modelFailed,
        `Could not load the model file ${path}: ${errorMessage(error).replace(/\.+$/, '')}. The file is corrupt, incomplete or not a GGUF model: ` +
          'delete it and download it again (npm run model:pull), or set LLM_MODEL_PATH to a valid .gguf file.',
        false,
        undefined,
        { cause: error },
      );
    });
    // LLM_THREADS=0 means "pick for me", as it does in llama.cpp.
    const threads = this.config.threads === undefined || this.config.threads === 0 ? defaultThreads(availableParallelism()) : this.config.threads;
    // Beyond the size it was trained on a model produces garbage; a smaller context is the honest choice.
    const contextSize = Math.min(this.config.contextSize, model.trainContextSize);
    if (contextSize < this.config.contextSize) {
      this.logger.warn({ configured: this.config.contextSize, trainContextSize: model.trainContextSize }, 'LLM_CONTEXT_SIZE is larger than the model supports; using the model maximum');
    }
    const context = await model.createContext({ contextSize, sequences: this.config.parallel, threads }).catch(async (error: unknown) => {
      await model.dispose();
      throw new ModelError(
        ErrorCodes.modelFailed,
        `Could not create a context of ${contextSize} tokens × ${this.config.parallel} sequences: ${errorMessage(error)}. Lower LLM_CONTEXT_SIZE or LLM_PARALLEL.`,
        false,
        undefined,
        { cause: error },
      );
    });
    const chatWrapper = resolveChatWrapper(model);
    const sequences = Array.from({ length: this.config.parallel }, () => context.getSequence());
    const modelName = model.fileInfo.metadata.general.name ?? basename(path);
    this.displayName = `local:${basename(path).replace(/\.gguf$/i, '')}`;
    this.logger.info(
      {
        model: modelName,
        file: path,
        contextSize: context.contextSize,
        parallel: this.config.parallel,
        threads,
        gpu: llama.gpu,
        chatWrapper: chatWrapper.wrapperName,
        loadMs: Math.round(performance.now() - began),
      },
      'local model loaded',
    );
    return { model, context, chatWrapper, pool: new SequencePool(sequences) };
  }

  private startRun(
    loaded: Loaded,
    sequence: LlamaContextSequence,
    { history, prompt, maxTokens }: { history: ChatHistoryItem[]; prompt: string; maxTokens: number },
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
    const session = new LlamaChatSession({ contextSequence: sequence, chatWrapper: loaded.chatWrapper, contextShift: { size: contextShiftSize(loaded) } });
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

  /** Tokens the answer may use; throws model_context_overflow when the prompt leaves too few. */
  private answerRoom(loaded: Loaded, history: ChatHistoryItem[], prompt: string): number {
    const { contextText } = loaded.chatWrapper.generateContextState({
      chatHistory: [...history, { type: 'user', text: prompt }, { type: 'model', response: [] }],
    });
    const promptTokens = contextText.tokenize(loaded.model.tokenizer).length;
    const contextSize = loaded.context.contextSize;
    // node-llama-cpp starts cutting the conversation when the prompt leaves less than one context
    // shift free, and shifts (failing, when only the answer could go) once generation reaches
    // contextSize - 1; its maxTokens check comes first, so an answer of exactly `room` never shifts.
    const room = contextSize - 1 - promptTokens;
    if (promptTokens > contextSize - contextShiftSize(loaded) || room < MIN_ANSWER_TOKENS) {
      throw new ModelError(
        ErrorCodes.modelContextOverflow,
        `The conversation needs ${promptTokens} tokens but the model's context holds ${contextSize} (with room for an answer). ` +
          'Send a shorter message, or raise LLM_CONTEXT_SIZE and keep LLM_HISTORY_TOKENS + LLM_MAX_TOKENS below it.',
      );
    }
    return Math.min(this.config.maxTokens, room);
  }

  private async shutdown(): Promise<void> {
    this.closeController.abort();
    this.loaded?.pool.close();
    await this.starting?.catch(() => undefined);
    const loaded = this.loaded;
    logSinks.delete(this.logger);
    if (loaded === undefined) return;
    loaded.pool.close();
    await Promise.allSettled([...this.running]);
    // The Llama runtime itself is shared and stays (see sharedLlama); the memory is in these two.
    await loaded.context.dispose();
    await loaded.model.dispose();
  }
}

// -----------------------------------------------------------------------------------------------

/**
 * llama.cpp's backend and its log hook are process-wide: with two Llama instances alive the newer one
 * receives every log line, and one created after another was disposed loses its logger altogether
 * (node-llama-cpp 3.21.1). So the process shares one Llama per GPU choice and keeps it until exit;
 * providers dispose their model and context, which is where the memory is.
 */
const llamas = new Map<'auto' | false, Promise<Llama>>();
/** Loggers of live providers; llama.cpp's lines go to the newest (it cannot say which model they are about). */
const logSinks = new Set<ProviderLogger>();

function sharedLlama(gpu: 'auto' | false): Promise<Llama> {
  let llama = llamas.get(gpu);
  if (llama === undefined) {
    llama = getLlama({
      gpu,
      // Building llama.cpp from source needs a compiler and the network; the prebuilt binaries are
      // what we ship, and a missing one should be a clear error rather than a surprise compile.
      build: 'never',
      logLevel: LlamaLogLevel.warn,
      logger: logLlama,
    }).catch((error: unknown) => {
      llamas.delete(gpu);
      throw new ModelError(ErrorCodes.modelFailed, `llama.cpp could not start on this machine: ${errorMessage(error)}`, false, undefined, { cause: error });
    });
    llamas.set(gpu, llama);
  }
  return llama;
}

function logLlama(level: LlamaLogLevel, message: string): void {
  const text = message.trim();
  const logger = [...logSinks].at(-1);
  if (text === '' || logger === undefined) return;
  if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) logger.error({ source: 'llama.cpp' }, text);
  else if (level === LlamaLogLevel.warn) logger.warn({ source: 'llama.cpp' }, text);
}

/** Room node-llama-cpp frees when a context fills up; we only need it to predict when it would cut. */
function contextShiftSize(loaded: Loaded): number {
  return Math.max(1, Math.floor(loaded.context.contextSize / 10));
}

/** `[system?, ...history, user]` → node-llama-cpp's chat history plus the prompt to answer. */
function toChatHistory(turns: readonly ChatTurn[]): { history: ChatHistoryItem[]; prompt: string } {
  const last = turns.at(-1);
  if (last === undefined || last.role !== 'user') {
    throw new ModelError(ErrorCodes.modelFailed, 'A conversation sent to the model must end with a user turn.');
  }
  const history = turns.slice(0, -1).map((turn): ChatHistoryItem => {
    if (turn.role === 'assistant') return { type: 'model', response: [turn.content] };
    return { type: turn.role, text: turn.content };
  });
  return { history, prompt: last.content };
}

function modelFileStem(config: ModelConfig): string {
  if (config.modelPath !== undefined) return basename(config.modelPath).replace(/\.gguf$/i, '');
  try {
    return basename(parseModelUri(config.modelUri).relativePath).replace(/\.gguf$/i, '');
  } catch {
    return 'model';
  }
}

function shuttingDown(): ModelError {
  return new ModelError(ErrorCodes.shuttingDown, 'The local model was closed (worker shutting down).', true);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// node-llama-cpp reports these as plain Errors; their wording is the only signal.
const OVERFLOW_PATTERN = /context size|context shift|compress chat history|too long prompt/i;

function toModelError(error: unknown, stage: 'load' | 'generate'): ModelError {
  if (error instanceof ModelError) return error;
  const message = errorMessage(error);
  if (stage === 'generate' && OVERFLOW_PATTERN.test(message)) {
    return new ModelError(ErrorCodes.modelContextOverflow, `The conversation does not fit the model's context: ${message}`, false, undefined, { cause: error });
  }
  const what = stage === 'load' ? 'could not be loaded' : 'failed while answering';
  return new ModelError(ErrorCodes.modelFailed, `The local model ${what}: ${message}`, false, undefined, { cause: error });
}

function progressLogger(logger: ProviderLogger, uri: string): DownloadProgress {
  let lastDecile = -1;
  return (bytes, total) => {
    if (total === undefined || total === 0) return;
    const decile = Math.floor((bytes / total) * 10);
    if (decile === lastDecile) return;
    lastDecile = decile;
    logger.info({ uri, percent: decile * 10, mb: Math.round(bytes / 1e6), totalMb: Math.round(total / 1e6) }, 'downloading model');
  };
}

/**
 * Sequences free for a generation, and the requests waiting for one (first come, first served).
 * A waiter whose signal aborts leaves the queue; `close` sends every waiter away.
 */
class SequencePool {
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
class ChunkQueue implements AsyncIterable<string> {
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
