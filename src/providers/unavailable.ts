/**
 * A provider that cannot answer, and says why on every turn instead of pretending to: no model
 * configured (LLM_PROVIDER=none), a model that failed to start, or the local model's optional
 * binding not installed. Parley still runs: sessions, history and the queue work.
 */
import { ErrorCodes, ModelError } from '../contracts/errors.js';
import { estimateTokens } from './token-estimate.js';
import type { GenerateRequest, ModelProvider } from './provider.js';

export const MODEL_NOT_CONFIGURED_MESSAGE =
  'No language model is configured: set LLM_BASE_URL (an OpenAI-compatible API) or LLM_MODEL_PATH (a local GGUF model)';

export class UnavailableProvider implements ModelProvider {
  constructor(
    readonly name: string,
    private readonly failure: ModelError,
  ) {}

  /** LLM_PROVIDER=none. */
  static notConfigured(): UnavailableProvider {
    return new UnavailableProvider('none', new ModelError(ErrorCodes.modelNotConfigured, MODEL_NOT_CONFIGURED_MESSAGE));
  }

  async start(): Promise<void> {}

  /** Fails on the first `next()`, like a real provider whose request failed. */
  generate(_request: GenerateRequest): AsyncIterable<string> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.reject(this.failure),
      }),
    };
  }

  /** Same documented estimate as the remote providers (see estimateTokens). */
  countTokens(text: string): number {
    return estimateTokens(text);
  }

  async close(): Promise<void> {}
}
