/**
 * Picks the model provider from configuration: an OpenAI-compatible API when LLM_BASE_URL is set,
 * otherwise the local llama.cpp model. The local model's binding (node-llama-cpp, about 300 MB) is
 * an optional dependency, loaded only when chosen: a gateway or an API-backed worker never needs it.
 */
import type { ModelConfig } from '../config/config.js';
import { ErrorCodes, ModelError } from '../contracts/errors.js';
import type { Logger } from '../shared/logger.js';
import { OpenAICompatibleProvider } from './openai/openai-provider.js';
import type { ModelProvider } from './provider.js';
import { UnavailableProvider } from './unavailable.js';

export const LOCAL_BINDING_MISSING =
  'The local model needs the optional package node-llama-cpp, which is not installed: run `npm install node-llama-cpp@3.21.1`, or set LLM_BASE_URL to use an OpenAI-compatible API';

export async function createProvider(config: ModelConfig, logger: Logger): Promise<ModelProvider> {
  switch (config.provider) {
    case 'openai':
      return new OpenAICompatibleProvider(config, logger);
    case 'local':
      return createLocalProvider(config, logger);
    case 'none':
      return UnavailableProvider.notConfigured();
  }
}

/**
 * The local provider's module, named by a variable so that the compiler does not follow it: a
 * build without the binding leaves it out (tsconfig.lean.json). Its shape is checked here.
 */
const LOCAL_PROVIDER_MODULE = './local/local-provider.js';
interface LocalProviderModule {
  LocalLlamaProvider: new (config: ModelConfig, logger: Logger, options: { gpu: false | 'auto'; hfEndpoint: string }) => ModelProvider;
}

async function createLocalProvider(config: ModelConfig, logger: Logger): Promise<ModelProvider> {
  try {
    const { LocalLlamaProvider } = (await import(LOCAL_PROVIDER_MODULE)) as LocalProviderModule;
    return new LocalLlamaProvider(config, logger, { gpu: config.gpu === 'cpu' ? false : 'auto', hfEndpoint: config.hfEndpoint });
  } catch (error) {
    if (!isMissingBinding(error)) throw error;
    logger.error(LOCAL_BINDING_MISSING);
    return new UnavailableProvider('local', new ModelError(ErrorCodes.modelNotConfigured, LOCAL_BINDING_MISSING));
  }
}

/** The binding is not installed, or (a build made without it) the local provider was left out. */
function isMissingBinding(error: unknown): boolean {
  if (!(error instanceof Error && 'code' in error && error.code === 'ERR_MODULE_NOT_FOUND')) return false;
  return error.message.includes('node-llama-cpp') || error.message.includes('local-provider');
}
