/**
 * The provider used when no language model is configured (LLM_PROVIDER=none). Parley still runs:
 * sessions, history and the queue work, and every answer fails with `model_not_configured`, which
 * tells the user exactly what to set instead of pretending to answer.
 */
import { ErrorCodes, ModelError } from '../contracts/errors.js';
import { estimateTokens } from './openai.js';
import type { GenerateRequest, ModelProvider } from './provider.js';

export const MODEL_NOT_CONFIGURED_MESSAGE =
  'No language model is configured: set LLM_BASE_URL (an OpenAI-compatible API) or LLM_MODEL_PATH (a local GGUF model)';

export class NoModelProvider implements ModelProvider {
  readonly name = 'none';

  async start(): Promise<void> {}

  /** Fails on the first `next()`, like a real provider whose request failed. */
  generate(_request: GenerateRequest): AsyncIterable<string> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => Promise.reject(new ModelError(ErrorCodes.modelNotConfigured, MODEL_NOT_CONFIGURED_MESSAGE)),
      }),
    };
  }

  /** Same documented estimate as the remote providers (see estimateTokens). */
  countTokens(text: string): number {
    return estimateTokens(text);
  }

  async close(): Promise<void> {}
}
