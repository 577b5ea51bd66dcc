/**
 * Loading the local model: the model file (downloaded when needed), the process-wide llama.cpp
 * runtime and its log, the model and a context of `parallel` sequences; and the ModelErrors of
 * node-llama-cpp's failures.
 */
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { getLlama, LlamaLogLevel, resolveChatWrapper, type ChatWrapper, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import type { ModelConfig } from '../../config/config.js';
import { ErrorCodes, ModelError } from '../../contracts/errors.js';
import type { ProviderLogger } from '../provider.js';
import { resolveModelFile, type DownloadProgress } from './model-files.js';
import { SequencePool } from './sequence-pool.js';

export interface LocalProviderOptions {
  /** llama.cpp backend: "auto" uses Metal/CUDA/Vulkan when present; false forces the CPU. Default "auto". */
  readonly gpu?: 'auto' | false;
  /** Hugging Face endpoint for `hf:` URIs (tests, mirrors). */
  readonly hfEndpoint?: string;
  /** Download progress; by default it is logged every 10 %. */
  readonly onDownloadProgress?: DownloadProgress;
}

export interface Loaded {
  /** The model file. */
  readonly path: string;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly chatWrapper: ChatWrapper;
  readonly pool: SequencePool;
}

/**
 * llama.cpp's backend and its log hook are process-wide: with two Llama instances alive the newer one
 * receives every log line, and one created after another was disposed loses its logger altogether
 * (node-llama-cpp 3.21.1). So the process shares one Llama per GPU choice and keeps it until exit;
 * providers dispose their model and context, which is where the memory is.
 */
const llamas = new Map<'auto' | false, Promise<Llama>>();
/** Loggers of live providers; llama.cpp's lines go to the newest (it cannot say which model they are about). */
export const llamaLogSinks = new Set<ProviderLogger>();

/** Threads for a machine with `cores` cores: one core stays free for the event loop and Redis I/O. */
function defaultThreads(cores: number): number {
  return Math.max(1, Math.min(4, cores - 1));
}

/** Resolves (downloading when needed) and loads the model, then creates its context. */
export async function loadModel(config: ModelConfig, options: LocalProviderOptions, logger: ProviderLogger, signal: AbortSignal): Promise<Loaded> {
  const began = performance.now();
  const file = await resolveModelFile(config, {
    hfEndpoint: options.hfEndpoint,
    onProgress: options.onDownloadProgress ?? progressLogger(logger, config.modelUri),
    signal,
  });
  if (file.origin === 'downloaded') {
    logger.info({ path: file.path, sha256: file.sha256 }, 'model downloaded (set LLM_MODEL_SHA256 to this digest to pin it)');
  }
  const llama = await sharedLlama(options.gpu ?? 'auto');
  const path = file.path;
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
  const threads = config.threads === undefined || config.threads === 0 ? defaultThreads(availableParallelism()) : config.threads;
  // Beyond the size it was trained on a model produces garbage; a smaller context is the honest choice.
  const contextSize = Math.min(config.contextSize, model.trainContextSize);
  if (contextSize < config.contextSize) {
    logger.warn({ configured: config.contextSize, trainContextSize: model.trainContextSize }, 'LLM_CONTEXT_SIZE is larger than the model supports; using the model maximum');
  }
  const context = await model.createContext({ contextSize, sequences: config.parallel, threads }).catch(async (error: unknown) => {
    await model.dispose();
    throw new ModelError(
      ErrorCodes.modelFailed,
      `Could not create a context of ${contextSize} tokens × ${config.parallel} sequences: ${errorMessage(error)}. Lower LLM_CONTEXT_SIZE or LLM_PARALLEL.`,
      false,
      undefined,
      { cause: error },
    );
  });
  const chatWrapper = resolveChatWrapper(model);
  const sequences = Array.from({ length: config.parallel }, () => context.getSequence());
  logger.info(
    {
      model: model.fileInfo.metadata.general.name ?? basename(path),
      file: path,
      contextSize: context.contextSize,
      parallel: config.parallel,
      threads,
      gpu: llama.gpu,
      chatWrapper: chatWrapper.wrapperName,
      loadMs: Math.round(performance.now() - began),
    },
    'local model loaded',
  );
  return { path, model, context, chatWrapper, pool: new SequencePool(sequences) };
}

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
  const logger = [...llamaLogSinks].at(-1);
  if (text === '' || logger === undefined) return;
  if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) logger.error({ source: 'llama.cpp' }, text);
  else if (level === LlamaLogLevel.warn) logger.warn({ source: 'llama.cpp' }, text);
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

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// node-llama-cpp reports these as plain Errors; their wording is the only signal.
const OVERFLOW_PATTERN = /context size|context shift|compress chat history|too long prompt/i;

export function toModelError(error: unknown, stage: 'load' | 'generate'): ModelError {
  if (error instanceof ModelError) return error;
  const message = errorMessage(error);
  if (stage === 'generate' && OVERFLOW_PATTERN.test(message)) {
    return new ModelError(ErrorCodes.modelContextOverflow, `The conversation does not fit the model's context: ${message}`, false, undefined, { cause: error });
  }
  const what = stage === 'load' ? 'could not be loaded' : 'failed while answering';
  return new ModelError(ErrorCodes.modelFailed, `The local model ${what}: ${message}`, false, undefined, { cause: error });
}
