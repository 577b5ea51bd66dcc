/**
 * Picks the model provider from configuration: an OpenAI-compatible API when LLM_BASE_URL is set,
 * otherwise the local llama.cpp model (loaded only when chosen: the binding is heavy).
 */
import type { ModelConfig } from '../config/config.js';
import type { Logger } from '../shared/logger.js';
import { NoModelProvider } from './none.js';
import { OpenAICompatibleProvider } from './openai.js';
import type { ModelProvider } from './provider.js';

export async function createProvider(config: ModelConfig, logger: Logger): Promise<ModelProvider> {
  switch (config.provider) {
    case 'openai':
      return new OpenAICompatibleProvider(config, logger);
    case 'local': {
      const { LocalLlamaProvider } = await import('./local/local-provider.js');
      return new LocalLlamaProvider(config, logger, { gpu: config.gpu === 'cpu' ? false : 'auto', hfEndpoint: config.hfEndpoint });
    }
    case 'none':
      return new NoModelProvider();
  }
}
