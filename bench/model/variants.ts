/**
 * The ways to the same answer that bench:model compares: node-llama-cpp alone (raw), the provider
 * the worker calls (provider), and a WebSocket turn through a gateway (pipeline; the in-process
 * diagnostic is the same turn against a gateway in this process). Each is timed the same way.
 */
import { getLlama, LlamaChatSession, LlamaLogLevel, resolveChatWrapper, type LlamaContextSequence } from 'node-llama-cpp';
import { loadConfig, type ModelConfig } from '../../src/config/config.js';
import { LocalLlamaProvider } from '../../src/providers/local/local-provider.js';
import type { ChatTurn } from '../../src/providers/provider.js';
import { BenchSocket, createSession, keepText, type KeptText } from '../lib/client.js';

export const SYSTEM_PROMPT = 'You are Parley, a helpful and concise assistant.';
export const PROMPT = 'Once upon a time';

/** 'inprocess' (with --in-process): the pipeline with gateway and worker inside this process, a diagnostic. */
export type Variant = 'raw' | 'provider' | 'pipeline' | 'inprocess';

/** One answer: its text, the pieces it came in and when (performance.now()). */
export interface Timed extends KeptText {
  readonly pieces: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

const never = new AbortController().signal;

function measure(run: (onText: (text: string) => void) => Promise<void>): Promise<Timed> {
  const kept: KeptText = { text: '', firstAt: 0, lastAt: 0 };
  let pieces = 0;
  const startedAt = performance.now();
  return run((text) => {
    if (text === '') return;
    keepText(kept, text);
    pieces += 1;
  }).then(() => ({ ...kept, pieces, startedAt, endedAt: performance.now() }));
}

export interface RawModel {
  answer(): Promise<Timed>;
  close(): Promise<void>;
}

/** node-llama-cpp alone: one context like the provider's, a LlamaChatSession per request. */
export async function loadRaw(config: ModelConfig): Promise<RawModel> {
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) console.error(`llama.cpp: ${message.trim()}`);
    },
  });
  const model = await llama.loadModel({ modelPath: config.modelPath ?? '' });
  const context = await model.createContext({ contextSize: Math.min(config.contextSize, model.trainContextSize), sequences: config.parallel, threads: config.threads });
  const chatWrapper = resolveChatWrapper(model);
  const sequence: LlamaContextSequence = context.getSequence();
  return {
    answer: () =>
      measure(async (onText) => {
        // As the provider does: a new session on a kept sequence, so the cached prompt prefix is reused.
        const session = new LlamaChatSession({ contextSequence: sequence, chatWrapper });
        session.setChatHistory([{ type: 'system', text: config.systemPrompt }]);
        await session.prompt(PROMPT, { onTextChunk: onText, maxTokens: config.maxTokens, temperature: config.temperature, topP: config.topP });
        session.dispose();
      }),
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

export function providerAnswer(provider: LocalLlamaProvider): Promise<Timed> {
  const turns: ChatTurn[] = [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: PROMPT },
  ];
  return measure(async (onText) => {
    for await (const chunk of provider.generate({ turns, signal: never })) onText(chunk);
  });
}

/** One turn through the gateway: a new session and socket (outside the timing), then message → done. */
export async function pipelineAnswer(gatewayUrl: string): Promise<Timed> {
  const socket = await BenchSocket.open(gatewayUrl, await createSession(gatewayUrl), 'streaming', { keepText: true });
  try {
    const turn = await socket.send(PROMPT);
    if (!turn.ok || turn.answer === undefined) throw new Error(`the pipeline answered ${turn.error ?? 'without text'}`);
    const { text, firstAt, lastAt } = turn.answer;
    return { text, pieces: turn.deltaFrames, startedAt: turn.sentAt, firstAt, lastAt, endedAt: turn.doneAt };
  } finally {
    socket.close();
  }
}

/** The --in-process diagnostic: gateway and worker in this process, on the same Redis; returns the gateway's URL. */
export async function startInProcess(settings: Record<string, string>, redisUrl: string, keyPrefix: string, cleanups: Array<() => Promise<void>>): Promise<string> {
  const { startGateway } = await import('../../src/gateway/server.js');
  const { startWorker } = await import('../../src/worker/worker.js');
  const { createLogger } = await import('../../src/shared/logger.js');
  const config = loadConfig({ ...settings, REDIS_URL: redisUrl, KEY_PREFIX: keyPrefix, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn' });
  const logger = createLogger('bench-in-process', 'warn');
  const worker = await startWorker(config, new LocalLlamaProvider(config.model, logger, { gpu: false }), logger);
  cleanups.push(() => worker.stop());
  const gateway = await startGateway(config, logger);
  cleanups.push(() => gateway.stop());
  return gateway.url;
}
