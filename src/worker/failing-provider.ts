/** Stands in for a model that failed to start: every answer is that start-up error, never text. */
import type { ModelError } from '../contracts/errors.js';
import type { GenerateRequest, ModelProvider } from '../providers/provider.js';

export class FailingProvider implements ModelProvider {
  constructor(
    readonly name: string,
    private readonly failure: ModelError,
  ) {}

  async start(): Promise<void> {}

  // eslint-disable-next-line require-yield -- a generator that fails before its first chunk
  async *generate(_request: GenerateRequest): AsyncIterable<string> {
    throw this.failure;
  }

  countTokens(text: string): number {
    return Math.ceil(text.length / 4);
  }

  async close(): Promise<void> {}
}
