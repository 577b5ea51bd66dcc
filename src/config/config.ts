/**
 * Every setting Parley reads, its default and its validation, in one place. Values come from the
 * environment (and a `.env` file when present); `loadConfig` fails once, at start-up, with one line
 * per invalid value.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../contracts/errors.js';

// A blank value is not a number (coercion would silently read it as 0, e.g. `PORT=` as a random port).
const blankIsNaN = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? Number.NaN : value);
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    blankIsNaN,
    z.coerce
      .number({ error: 'expected a whole number' })
      .int('expected a whole number')
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`),
  );
const num = (min: number, max: number) =>
  z.preprocess(
    blankIsNaN,
    z.coerce
      .number({ error: 'expected a number' })
      .min(min, `must be between ${min} and ${max}`)
      .max(max, `must be between ${min} and ${max}`),
  );
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
  .transform((value) => ['true', '1', 'yes'].includes(value));
const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value));
const onOff = z.enum(['on', 'off'], { error: 'expected on or off' });
const list = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item !== ''));

const envSchema = z.object({
  // Gateway
  PORT: int(0, 65535).default(3500),
  HOST: z.string().min(1).default('0.0.0.0'),
  CORS_ORIGINS: list.default([]),
  SESSION_TTL_SECONDS: int(1, 30 * 24 * 3600).default(3600),
  NAME_MAX_CHARS: int(1, 1000).default(100),
  MESSAGE_MAX_CHARS: int(1, 1_000_000).default(8000),
  // Default: follows MESSAGE_MAX_CHARS (see frameLimit); set it only to override.
  WS_MAX_FRAME_BYTES: int(1024, 64 * 1024 * 1024).optional(),
  MAX_PENDING_PER_SESSION: int(1, 10_000).default(20),
  HISTORY_MAX_RECORDS: int(200, 1_000_000).default(1000),
  REFRESH_MAX_MESSAGES: int(1, 1_000_000).default(200),
  MAX_SOCKETS_PER_SESSION: int(1, 10_000).default(8),
  MAX_QUEUE_WAIT_MS: int(0, 24 * 3_600_000).default(120_000),
  // Rate limits, shared by all gateways through Redis; 0 turns one off. Per client address unless named.
  RATE_SESSIONS_PER_MINUTE: int(0).default(20),
  RATE_UPGRADES_PER_MINUTE: int(0).default(60),
  RATE_MESSAGES_PER_MINUTE: int(0).default(40),
  RATE_SESSION_MESSAGES_PER_MINUTE: int(0).default(20),
  RATE_RESUMES_PER_MINUTE: int(0).default(20),
  RATE_SWITCHES_PER_MINUTE: int(0).default(60),
  // Sign-in (issue 13): per address+username, per username, per address; sign-ups per address; messages per account.
  RATE_SIGNIN_PER_MINUTE: int(0).default(10),
  RATE_SIGNIN_ACCOUNT_PER_MINUTE: int(0).default(30),
  RATE_SIGNIN_ADDRESS_PER_MINUTE: int(0).default(30),
  RATE_SIGNUPS_PER_MINUTE: int(0).default(5),
  RATE_ACCOUNT_MESSAGES_PER_MINUTE: int(0).default(40),
  ANONYMOUS_CHAT: onOff.default('on'),
  SIGNUP: z.enum(['open', 'invite', 'closed']).default('open'),
  LOCAL_ACCOUNTS: onOff.default('on'),
  OIDC_ISSUER: optionalString.pipe(z.url({ error: 'expected the issuer URL, such as https://accounts.google.com' }).optional()),
  OIDC_CLIENT_ID: optionalString,
  OIDC_CLIENT_SECRET: optionalString,
  OIDC_REDIRECT_URL: optionalString.pipe(z.url({ error: 'expected a URL ending in /api/v1/auth/oidc/callback' }).optional()),
  OIDC_LABEL: z.string().trim().min(1).max(60).default('single sign-on'),
  OIDC_SCOPES: z.string().default('openid email profile'),
  AUTH_COOKIE_SECURE: bool.default(false),
  AUTH_SESSION_DAYS: int(1, 3650).default(30),
  INVITE_DAYS: int(1, 3650).default(7),
  WEB_DIR: optionalString,
  TRUST_PROXY: bool.default(false),
  // Metrics and readiness: a separate listener, private by default (issue 9).
  METRICS_PORT: int(0, 65535).optional(),
  WORKER_METRICS_PORT: int(0, 65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters (a random secret)').optional()),
  // How long an HTTP request waits for Redis before it is answered 503 (Redis commands have no timeout of their own).
  REQUEST_DEADLINE_MS: int(100, 120_000).default(3000),
  // Redis (names kept for older deployments: docs/protocol.md, "Compatibility")
  REDIS_URL: optionalString,
  REDIS_HOST: optionalString,
  REDIS_PORT: int(1, 65535).optional(),
  REDIS_USER: optionalString,
  REDIS_PASSWORD: optionalString,
  REDIS_TLS: bool.optional(),
  REDIS_CLUSTER: bool.default(false),
  // Streams the work queue is split into (default: 1 on one Redis, 8 on a Cluster; see README).
  QUEUE_PARTITIONS: int(1, 256).optional(),
  KEY_PREFIX: z.string().regex(/^[\w:.-]{0,64}$/, 'letters, digits and _ : . - (at most 64)').default('parley:'),
  EVENTS_MAX_LEN: int(100, 1_000_000).default(2000),
  // Worker
  WORKER_CONCURRENCY: int(1, 1024).optional(),
  LEASE_MS: int(1000, 600_000).default(10_000),
  CLAIM_IDLE_MS: int(1000, 3_600_000).default(15_000),
  CLAIM_INTERVAL_MS: int(100, 600_000).default(5000),
  FLUSH_INTERVAL_MS: int(1, 10_000).default(50),
  FLUSH_MAX_CHARS: int(1, 1_000_000).default(512),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  MAX_ACTIVE_PER_ADDRESS: int(0, 10_000).default(2),
  // Language model
  LLM_PROVIDER: z.enum(['openai', 'local', 'none']).optional(),
  LLM_BASE_URL: optionalString.pipe(z.url({ error: 'expected a URL such as http://localhost:11434/v1' }).optional()),
  LLM_API_KEY: optionalString,
  LLM_MODEL: optionalString,
  LLM_SYSTEM_PROMPT: z.string().default('You are Parley, a helpful and concise assistant.'),
  LLM_MAX_TOKENS: int(1, 1_000_000).default(512),
  LLM_TEMPERATURE: num(0, 2).default(0.7),
  LLM_TOP_P: num(0, 1).default(0.95),
  LLM_STOP: list.default([]),
  LLM_HISTORY_TOKENS: int(16, 10_000_000).default(3072),
  LLM_FIRST_TOKEN_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  LLM_IDLE_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  LLM_TOTAL_TIMEOUT_MS: int(100, 24 * 3_600_000).default(300_000),
  LLM_MAX_RETRIES: int(0, 20).default(3),
  LLM_MODEL_PATH: optionalString,
  LLM_MODEL_URI: z.string().default('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf'),
  LLM_MODEL_SHA256: optionalString,
  MODELS_DIR: z.string().default('models'),
  LLM_CONTEXT_SIZE: int(256, 1_048_576).default(4096),
  LLM_PARALLEL: int(1, 64).default(2),
  LLM_THREADS: int(0, 256).optional(),
  LLM_GPU: z.enum(['auto', 'cpu']).default('auto'),
  HF_ENDPOINT: z.url({ error: 'expected a URL such as https://huggingface.co' }).default('https://huggingface.co'),
  // Logging
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
});

type Env = z.infer<typeof envSchema>;

export interface RedisConfig {
  readonly url: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
  /** REDIS_URL names one node of a Redis Cluster. */
  readonly cluster: boolean;
  /** True when nothing told us where Redis is, so `npm start` may start a local one. */
  readonly isDefault: boolean;
}

/** Allowed events per minute for each limit; 0 = unlimited. */
export interface RateLimits {
  /** POST /token per client address. */
  readonly sessionsPerMinute: number;
  /** WebSocket upgrades per client address. */
  readonly upgradesPerMinute: number;
  /** Messages per client address (all its sessions). */
  readonly messagesPerMinute: number;
  /** Messages per session (all its sockets). */
  readonly sessionMessagesPerMinute: number;
  /** Resume frames per socket (each replays events). */
  readonly resumesPerMinute: number;
  /** `switch` frames per socket (branch switches). */
  readonly switchesPerMinute: number;
  /** Sign-in attempts per client address and username. */
  readonly signinPerMinute: number;
  /** Sign-in attempts per username, from all addresses together. */
  readonly signinAccountPerMinute: number;
  /** Sign-in attempts per client address, all usernames together. */
  readonly signinAddressPerMinute: number;
  /** Sign-ups per client address. */
  readonly signupsPerMinute: number;
  /** Messages per account (all its sessions and sockets). */
  readonly accountMessagesPerMinute: number;
}

export interface OidcConfig {
  /** Issuer URL; its /.well-known/openid-configuration is read on the first sign-in. */
  readonly issuer: string;
  readonly clientId: string;
  /** Undefined: a public client (PKCE only, token endpoint auth "none"). */
  readonly clientSecret: string | undefined;
  /** Where the provider sends the browser back: <public URL>/api/v1/auth/oidc/callback. */
  readonly redirectUrl: string;
  /** The sign-in button says "Sign in with <label>". */
  readonly label: string;
  readonly scopes: string;
}

export interface AuthConfig {
  /** ANONYMOUS_CHAT: sessions without an account (POST /token). */
  readonly anonymous: boolean;
  readonly signup: 'open' | 'invite' | 'closed';
  /** LOCAL_ACCOUNTS: username + password sign-in and sign-up. */
  readonly local: boolean;
  readonly oidc: OidcConfig | undefined;
  /** AUTH_COOKIE_SECURE: mark the cookie Secure even on requests that did not come over https. */
  readonly cookieSecure: boolean;
  readonly sessionDays: number;
  readonly inviteDays: number;
}

export interface ModelConfig {
  readonly provider: 'openai' | 'local' | 'none';
  readonly baseUrl: string | undefined;
  readonly apiKey: string | undefined;
  readonly model: string | undefined;
  readonly systemPrompt: string;
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  readonly stop: readonly string[];
  readonly historyTokens: number;
  readonly firstTokenTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly maxRetries: number;
  readonly modelPath: string | undefined;
  readonly modelUri: string;
  readonly modelSha256: string | undefined;
  readonly modelsDir: string;
  readonly contextSize: number;
  readonly parallel: number;
  readonly threads: number | undefined;
  readonly gpu: 'auto' | 'cpu';
  readonly hfEndpoint: string;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly corsOrigins: readonly string[];
  readonly sessionTtlSeconds: number;
  readonly nameMaxChars: number;
  readonly messageMaxChars: number;
  readonly wsMaxFrameBytes: number;
  readonly maxPendingPerSession: number;
  readonly historyMaxRecords: number;
  readonly refreshMaxMessages: number;
  readonly maxSocketsPerSession: number;
  /** A new message whose estimated wait for a worker is longer is refused with "busy"; 0 = never. */
  readonly maxQueueWaitMs: number;
  readonly rateLimits: RateLimits;
  readonly auth: AuthConfig;
  readonly webDir: string | undefined;
  readonly trustProxy: boolean;
  /** Gateway metrics listener (/metrics, /readyz) on metricsHost; undefined: none. */
  readonly metricsPort: number | undefined;
  /** Worker metrics listener on metricsHost; undefined: none. */
  readonly workerMetricsPort: number | undefined;
  readonly metricsHost: string;
  /** When set, the gateway also serves /metrics on its public port to `Authorization: Bearer <it>`. */
  readonly metricsToken: string | undefined;
  readonly requestDeadlineMs: number;
  readonly redis: RedisConfig;
  readonly keyPrefix: string;
  readonly eventsMaxLen: number;
  readonly queuePartitions: number;
  readonly workerConcurrency: number;
  readonly leaseMs: number;
  readonly claimIdleMs: number;
  readonly claimIntervalMs: number;
  readonly flushIntervalMs: number;
  readonly flushMaxChars: number;
  readonly shutdownGraceMs: number;
  /** Sessions of one client address answered at once, over all workers; 0 = no cap. */
  readonly maxActivePerAddress: number;
  readonly model: ModelConfig;
  readonly logLevel: Env['LOG_LEVEL'];
  readonly logFormat: Env['LOG_FORMAT'];
}

function redisConfig(env: Env): RedisConfig {
  const isDefault = env.REDIS_URL === undefined && env.REDIS_HOST === undefined && env.REDIS_PORT === undefined;
  const host = env.REDIS_HOST ?? '127.0.0.1';
  // An IPv6 address needs brackets inside a URL.
  const url = env.REDIS_URL ?? `redis://${host.includes(':') ? `[${host}]` : host}:${env.REDIS_PORT ?? 6379}`;
  return {
    url,
    username: env.REDIS_USER,
    password: env.REDIS_PASSWORD,
    tls: env.REDIS_TLS ?? url.startsWith('rediss://'),
    cluster: env.REDIS_CLUSTER,
    isDefault,
  };
}

function modelConfig(env: Env): ModelConfig {
  return {
    provider: env.LLM_PROVIDER ?? (env.LLM_BASE_URL === undefined ? 'local' : 'openai'),
    baseUrl: env.LLM_BASE_URL,
    apiKey: env.LLM_API_KEY,
    model: env.LLM_MODEL,
    systemPrompt: env.LLM_SYSTEM_PROMPT,
    maxTokens: env.LLM_MAX_TOKENS,
    temperature: env.LLM_TEMPERATURE,
    topP: env.LLM_TOP_P,
    stop: env.LLM_STOP,
    historyTokens: env.LLM_HISTORY_TOKENS,
    firstTokenTimeoutMs: env.LLM_FIRST_TOKEN_TIMEOUT_MS,
    idleTimeoutMs: env.LLM_IDLE_TIMEOUT_MS,
    totalTimeoutMs: env.LLM_TOTAL_TIMEOUT_MS,
    maxRetries: env.LLM_MAX_RETRIES,
    modelPath: env.LLM_MODEL_PATH,
    modelUri: env.LLM_MODEL_URI,
    modelSha256: env.LLM_MODEL_SHA256,
    modelsDir: env.MODELS_DIR,
    contextSize: env.LLM_CONTEXT_SIZE,
    parallel: env.LLM_PARALLEL,
    threads: env.LLM_THREADS,
    gpu: env.LLM_GPU,
    hfEndpoint: env.HF_ENDPOINT,
  };
}

function authConfig(env: Env): AuthConfig {
  const { OIDC_ISSUER: issuer, OIDC_CLIENT_ID: clientId, OIDC_REDIRECT_URL: redirectUrl } = env;
  return {
    anonymous: env.ANONYMOUS_CHAT === 'on',
    signup: env.SIGNUP,
    local: env.LOCAL_ACCOUNTS === 'on',
    oidc:
      issuer === undefined || clientId === undefined || redirectUrl === undefined
        ? undefined
        : { issuer, clientId, clientSecret: env.OIDC_CLIENT_SECRET, redirectUrl, label: env.OIDC_LABEL, scopes: env.OIDC_SCOPES },
    cookieSecure: env.AUTH_COOKIE_SECURE,
    sessionDays: env.AUTH_SESSION_DAYS,
    inviteDays: env.INVITE_DAYS,
  };
}

function authProblems(env: Env): string[] {
  const problems: string[] = [];
  const oidcSet = [env.OIDC_ISSUER, env.OIDC_CLIENT_ID, env.OIDC_REDIRECT_URL].filter((value) => value !== undefined).length;
  if (oidcSet > 0 && oidcSet < 3) problems.push('OpenID Connect needs all of OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_REDIRECT_URL');
  if (!env.OIDC_SCOPES.split(' ').includes('openid')) problems.push(`OIDC_SCOPES must include "openid" (got ${JSON.stringify(env.OIDC_SCOPES)})`);
  if (env.ANONYMOUS_CHAT === 'off' && env.LOCAL_ACCOUNTS === 'off' && oidcSet === 0) {
    problems.push('ANONYMOUS_CHAT=off and LOCAL_ACCOUNTS=off leave nobody a way in: configure OpenID Connect (OIDC_ISSUER …) or turn one back on');
  }
  return problems;
}

/**
 * The largest WebSocket frame worth reading: a message of MESSAGE_MAX_CHARS characters at 4 UTF-8
 * bytes each, plus room for a streaming frame's JSON (type, clientId, escapes of a few control
 * characters). Anything larger can only be refused, so it is not read into memory at all.
 */
const FRAME_OVERHEAD_BYTES = 4096;
export function frameLimit(messageMaxChars: number): number {
  return Math.max(1024, 4 * messageMaxChars + FRAME_OVERHEAD_BYTES);
}

/**
 * On a Cluster the queue is split so that it spreads over the primaries. The tags {p0}…{p7} hash
 * to slots that put 2/2/4 partitions on the primaries of an evenly split 3-primary cluster and
 * 2/2/2/2 on 4 primaries (16 partitions cover 6 primaries). Each partition costs every worker one
 * blocking connection and one command per second when idle, so more is not free.
 */
const CLUSTER_QUEUE_PARTITIONS = 8;

/**
 * A local model answers LLM_PARALLEL sessions at once, so taking more would only make sessions wait
 * in this worker while another worker may be idle; a remote API takes many requests at once.
 */
const REMOTE_CONCURRENCY = 32;
function defaultConcurrency(model: ModelConfig): number {
  return model.provider === 'local' ? model.parallel : REMOTE_CONCURRENCY;
}

function crossFieldProblems(config: Config): string[] {
  const problems: string[] = [];
  if (config.claimIdleMs <= config.leaseMs) {
    problems.push(`CLAIM_IDLE_MS (${config.claimIdleMs}) must be greater than LEASE_MS (${config.leaseMs}), or live workers lose their work`);
  }
  // A worker reads up to 4 × MAX_PENDING_PER_SESSION records per turn: trimming must never reach them.
  if (config.historyMaxRecords < 4 * config.maxPendingPerSession) {
    problems.push(`HISTORY_MAX_RECORDS (${config.historyMaxRecords}) must be at least 4 × MAX_PENDING_PER_SESSION (${4 * config.maxPendingPerSession})`);
  }
  if (config.model.provider === 'openai' && config.model.baseUrl === undefined) {
    problems.push('LLM_PROVIDER=openai needs LLM_BASE_URL (for example https://router.huggingface.co/v1)');
  }
  return problems;
}

/** Reads `.env` (when present; real environment variables win) into process.env. */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/** Parses and validates the environment; throws one ConfigError listing every problem. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(environment);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path.join('.');
        const given = environment[name];
        return `${name}: ${issue.message}${given === undefined ? '' : ` (got ${JSON.stringify(given)})`}`;
      }),
    );
  }
  const env = parsed.data;
  const model = modelConfig(env);
  const config: Config = {
    port: env.PORT,
    host: env.HOST,
    corsOrigins: env.CORS_ORIGINS,
    sessionTtlSeconds: env.SESSION_TTL_SECONDS,
    nameMaxChars: env.NAME_MAX_CHARS,
    messageMaxChars: env.MESSAGE_MAX_CHARS,
    wsMaxFrameBytes: env.WS_MAX_FRAME_BYTES ?? frameLimit(env.MESSAGE_MAX_CHARS),
    maxPendingPerSession: env.MAX_PENDING_PER_SESSION,
    historyMaxRecords: env.HISTORY_MAX_RECORDS,
    refreshMaxMessages: env.REFRESH_MAX_MESSAGES,
    maxSocketsPerSession: env.MAX_SOCKETS_PER_SESSION,
    maxQueueWaitMs: env.MAX_QUEUE_WAIT_MS,
    rateLimits: {
      sessionsPerMinute: env.RATE_SESSIONS_PER_MINUTE,
      upgradesPerMinute: env.RATE_UPGRADES_PER_MINUTE,
      messagesPerMinute: env.RATE_MESSAGES_PER_MINUTE,
      sessionMessagesPerMinute: env.RATE_SESSION_MESSAGES_PER_MINUTE,
      resumesPerMinute: env.RATE_RESUMES_PER_MINUTE,
      switchesPerMinute: env.RATE_SWITCHES_PER_MINUTE,
      signinPerMinute: env.RATE_SIGNIN_PER_MINUTE,
      signinAccountPerMinute: env.RATE_SIGNIN_ACCOUNT_PER_MINUTE,
      signinAddressPerMinute: env.RATE_SIGNIN_ADDRESS_PER_MINUTE,
      signupsPerMinute: env.RATE_SIGNUPS_PER_MINUTE,
      accountMessagesPerMinute: env.RATE_ACCOUNT_MESSAGES_PER_MINUTE,
    },
    auth: authConfig(env),
    webDir: env.WEB_DIR,
    trustProxy: env.TRUST_PROXY,
    metricsPort: env.METRICS_PORT,
    workerMetricsPort: env.WORKER_METRICS_PORT,
    metricsHost: env.METRICS_HOST,
    metricsToken: env.METRICS_TOKEN,
    requestDeadlineMs: env.REQUEST_DEADLINE_MS,
    redis: redisConfig(env),
    keyPrefix: env.KEY_PREFIX,
    eventsMaxLen: env.EVENTS_MAX_LEN,
    queuePartitions: env.QUEUE_PARTITIONS ?? (env.REDIS_CLUSTER ? CLUSTER_QUEUE_PARTITIONS : 1),
    workerConcurrency: env.WORKER_CONCURRENCY ?? defaultConcurrency(model),
    leaseMs: env.LEASE_MS,
    claimIdleMs: env.CLAIM_IDLE_MS,
    claimIntervalMs: env.CLAIM_INTERVAL_MS,
    flushIntervalMs: env.FLUSH_INTERVAL_MS,
    flushMaxChars: env.FLUSH_MAX_CHARS,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    maxActivePerAddress: env.MAX_ACTIVE_PER_ADDRESS,
    model,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT,
  };
  const problems = [...authProblems(env), ...crossFieldProblems(config)];
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
