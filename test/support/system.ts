/**
 * A whole Parley system for tests: real Redis (random key prefix), real gateways and workers
 * (in this process, or as child processes when a test needs to kill one), and the fake
 * OpenAI-compatible server as the language-model double.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DestinationStream } from 'pino';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startGateway, type GatewayHandle } from '../../src/gateway/server.js';
import { OpenAICompatibleProvider } from '../../src/providers/openai/openai-provider.js';
import type { ModelProvider } from '../../src/providers/provider.js';
import { createLogger } from '../../src/shared/logger.js';
import { startWorker, type WorkerHandle } from '../../src/worker/worker.js';
import { startFakeOpenAI, type FakeOpenAI } from './fake-openai-server.js';
import { deleteKeys, randomPrefix, TEST_REDIS_URL } from './redis.js';

/**
 * Every test client comes from 127.0.0.1: rate limits and the per-address cap would measure
 * themselves, so test systems run without them unless a test sets them.
 */
export const PER_ADDRESS_LIMITS_OFF: Readonly<Record<string, string>> = {
  MAX_ACTIVE_PER_ADDRESS: '0',
  RATE_SESSIONS_PER_MINUTE: '0',
  RATE_UPGRADES_PER_MINUTE: '0',
  RATE_MESSAGES_PER_MINUTE: '0',
  RATE_SESSION_MESSAGES_PER_MINUTE: '0',
  RATE_RESUMES_PER_MINUTE: '0',
  RATE_SWITCHES_PER_MINUTE: '0',
  RATE_SIGNIN_PER_MINUTE: '0',
  RATE_SIGNIN_ACCOUNT_PER_MINUTE: '0',
  RATE_SIGNIN_ADDRESS_PER_MINUTE: '0',
  RATE_SIGNUPS_PER_MINUTE: '0',
  RATE_ACCOUNT_MESSAGES_PER_MINUTE: '0',
};

export interface SystemOptions {
  readonly gateways?: number;
  readonly workers?: number;
  readonly sessionTtlSeconds?: number;
  /** Extra environment variables (configuration) for every gateway and worker. */
  readonly env?: Readonly<Record<string, string>>;
  /** Use this provider in the in-process workers instead of the fake OpenAI server. */
  readonly provider?: () => ModelProvider;
  /** Receives every log line (JSON) of the in-process gateways and workers, e.g. to assert on them. */
  readonly logDestination?: DestinationStream;
}

export interface TestSystem {
  /** http://127.0.0.1:PORT of gateway 0; it serves web/dist at / when built. */
  readonly baseUrl: string;
  readonly gatewayUrls: string[];
  readonly prefix: string;
  readonly model: FakeOpenAI;
  readonly env: Readonly<Record<string, string>>;
  readonly config: Config;
  restartGateway(index?: number): Promise<void>;
  stopGateway(index: number): Promise<void>;
  /** Starts another worker in this process; extraEnv overrides configuration (e.g. REDIS_URL of a proxy). */
  addWorker(extraEnv?: Readonly<Record<string, string>>): Promise<WorkerHandle>;
  /** Starts another gateway in this process and returns its base URL. */
  addGateway(extraEnv?: Readonly<Record<string, string>>): Promise<string>;
  /** Starts a worker as a child process (`src/worker/main.ts`), e.g. to SIGKILL it. */
  spawnWorker(extraEnv?: Readonly<Record<string, string>>): Promise<ChildProcess>;
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function startSystem(options: SystemOptions = {}): Promise<TestSystem> {
  const model = await startFakeOpenAI();
  const prefix = randomPrefix();
  const env: Record<string, string> = {
    REDIS_URL: TEST_REDIS_URL,
    KEY_PREFIX: prefix,
    HOST: '127.0.0.1',
    PORT: '0',
    LLM_BASE_URL: model.url,
    LLM_MODEL: 'fake-echo',
    LLM_MAX_RETRIES: '1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    LEASE_MS: '2000',
    CLAIM_IDLE_MS: '3000',
    CLAIM_INTERVAL_MS: '500',
    SHUTDOWN_GRACE_MS: '2000',
    SESSION_TTL_SECONDS: String(options.sessionTtlSeconds ?? 3600),
    ...PER_ADDRESS_LIMITS_OFF,
    ...options.env,
  };
  const config = loadConfig(env);
  const logger = createLogger('test', config.logLevel, 'json', options.logDestination);
  const gateways: Array<GatewayHandle | undefined> = [];
  const workers: WorkerHandle[] = [];
  const children: ChildProcess[] = [];

  const startOneGateway = (port = 0) => startGateway({ ...config, port }, logger.child({ part: 'gateway' }));
  const configWith = (extraEnv: Readonly<Record<string, string>>) => (Object.keys(extraEnv).length === 0 ? config : loadConfig({ ...env, ...extraEnv }));
  const addWorker = async (extraEnv: Readonly<Record<string, string>> = {}) => {
    const provider = options.provider?.() ?? new OpenAICompatibleProvider(config.model, logger, { retryBaseMs: 20, probeModels: false });
    const worker = await startWorker(configWith(extraEnv), provider, logger.child({ part: 'worker' }));
    workers.push(worker);
    return worker;
  };

  for (let index = 0; index < (options.gateways ?? 1); index += 1) gateways.push(await startOneGateway());
  for (let index = 0; index < (options.workers ?? 1); index += 1) await addWorker();
  const gatewayUrls = gateways.map((gateway) => gateway?.url ?? '');

  return {
    baseUrl: gatewayUrls[0] ?? '',
    gatewayUrls,
    prefix,
    model,
    env,
    config,
    addWorker,
    async addGateway(extraEnv = {}) {
      const gateway = await startGateway({ ...configWith(extraEnv), port: 0 }, logger.child({ part: 'gateway' }));
      gateways.push(gateway);
      return gateway.url;
    },
    async restartGateway(index = 0) {
      const old = gateways[index];
      if (old === undefined) throw new Error(`gateway ${index} is not running`);
      await old.stop();
      gateways[index] = await startOneGateway(old.port);
    },
    async stopGateway(index) {
      await gateways[index]?.stop();
      gateways[index] = undefined;
    },
    async spawnWorker(extraEnv = {}) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
        cwd: ROOT,
        env: { ...process.env, ...env, LOG_LEVEL: 'info', ...extraEnv },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        let output = '';
        child.stdout?.on('data', (data: Buffer) => {
          output += data.toString();
          if (output.includes('worker ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready:\n${output}`)));
      });
      return child;
    },
    async stop() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await Promise.all(workers.map((worker) => worker.stop()));
      await Promise.all(gateways.map((gateway) => gateway?.stop()));
      await model.close();
      await deleteKeys(prefix);
    },
  };
}
