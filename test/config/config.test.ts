/**
 * Configuration: defaults, the original system's Redis variables, one ConfigError naming every
 * invalid value, cross-field rules, and the `.env` file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, loadDotEnv } from '../../src/config/config.js';
import { ConfigError } from '../../src/contracts/errors.js';

/** The ConfigError that loading `env` raises. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`configuration ${JSON.stringify(env)} was accepted`);
}

test('defaults: port 3500, session lifetime 3600 s, local Redis, local model', () => {
  const config = loadConfig({});
  assert.equal(config.port, 3500);
  assert.equal(config.sessionTtlSeconds, 3600);
  assert.equal(config.keyPrefix, 'parley:');
  assert.deepEqual(config.redis, {
    url: 'redis://127.0.0.1:6379',
    username: undefined,
    password: undefined,
    tls: false,
    cluster: false,
    isDefault: true,
  });
  assert.equal(config.model.provider, 'local');
  assert.equal(config.model.baseUrl, undefined);
  assert.ok(config.claimIdleMs > config.leaseMs, 'the defaults obey their own rule');
  assert.ok(config.claimIdleMs <= 30_000, 'a dead worker is taken over within 30 s by default');
  assert.equal(config.workerConcurrency, config.model.parallel, 'a local model: as many sessions as it generates at once');
  assert.equal(loadConfig({ WORKER_CONCURRENCY: '7' }).workerConcurrency, 7);
});

test('LLM_BASE_URL selects the OpenAI-compatible provider', () => {
  const config = loadConfig({ LLM_BASE_URL: 'http://localhost:11434/v1', LLM_MODEL: 'llama3', LLM_API_KEY: 'secret' });
  assert.equal(config.model.provider, 'openai');
  assert.equal(config.model.baseUrl, 'http://localhost:11434/v1');
  assert.equal(config.model.model, 'llama3');
  assert.equal(config.model.apiKey, 'secret');
  assert.equal(config.workerConcurrency, 32, 'a remote API takes many requests at once');
  assert.equal(loadConfig({ LLM_BASE_URL: 'http://localhost:11434/v1', LLM_PROVIDER: 'none' }).model.provider, 'none');
});

test('numbers and switches are read from their text', () => {
  const config = loadConfig({ PORT: '8080', SESSION_TTL_SECONDS: '60', LLM_TEMPERATURE: '0.2', TRUST_PROXY: 'yes', CORS_ORIGINS: 'https://a.example, https://b.example' });
  assert.equal(config.port, 8080);
  assert.equal(config.sessionTtlSeconds, 60);
  assert.equal(config.model.temperature, 0.2);
  assert.equal(config.trustProxy, true);
  assert.deepEqual(config.corsOrigins, ['https://a.example', 'https://b.example']);
});

test("the original's Redis variables: REDIS_URL", () => {
  const redis = loadConfig({ REDIS_URL: 'redis://cache.internal:6380/2' }).redis;
  assert.equal(redis.url, 'redis://cache.internal:6380/2');
  assert.equal(redis.tls, false);
  assert.equal(redis.isDefault, false);
});

test("the original's Redis variables: REDIS_HOST and REDIS_PORT", () => {
  assert.equal(loadConfig({ REDIS_HOST: 'redis-12345.c1.cloud.example', REDIS_PORT: '12345' }).redis.url, 'redis://redis-12345.c1.cloud.example:12345');
  assert.equal(loadConfig({ REDIS_HOST: 'cache' }).redis.url, 'redis://cache:6379');
  const portOnly = loadConfig({ REDIS_PORT: '6390' }).redis;
  assert.equal(portOnly.url, 'redis://127.0.0.1:6390');
  assert.equal(portOnly.isDefault, false);
  // REDIS_URL, when given, wins over host and port.
  assert.equal(loadConfig({ REDIS_URL: 'redis://a:1', REDIS_HOST: 'b', REDIS_PORT: '2' }).redis.url, 'redis://a:1');
});

test("the original's Redis variables: REDIS_USER and REDIS_PASSWORD (ACL)", () => {
  const redis = loadConfig({ REDIS_HOST: 'cache', REDIS_USER: 'parley', REDIS_PASSWORD: 'p@ss:word/with#chars' }).redis;
  assert.equal(redis.username, 'parley');
  assert.equal(redis.password, 'p@ss:word/with#chars');
  assert.equal(redis.url, 'redis://cache:6379', 'credentials are passed apart, never pasted into the URL');
  assert.equal(loadConfig({ REDIS_PASSWORD: '' }).redis.password, undefined, 'blank means not set');
});

test('rediss:// turns TLS on; REDIS_TLS can force it', () => {
  assert.equal(loadConfig({ REDIS_URL: 'rediss://default:pw@redis-1.cloud.example:6380' }).redis.tls, true);
  assert.equal(loadConfig({ REDIS_HOST: 'cache', REDIS_TLS: 'true' }).redis.tls, true);
  assert.equal(loadConfig({ REDIS_URL: 'redis://cache:6379' }).redis.tls, false);
});

test('QUEUE_PARTITIONS: 1 on one Redis, 8 on a Cluster, or as given', () => {
  assert.equal(loadConfig({}).queuePartitions, 1);
  assert.equal(loadConfig({ REDIS_CLUSTER: 'true' }).queuePartitions, 8);
  assert.equal(loadConfig({ REDIS_CLUSTER: 'true', QUEUE_PARTITIONS: '16' }).queuePartitions, 16);
  assert.equal(loadConfig({ QUEUE_PARTITIONS: '4' }).queuePartitions, 4);
  assert.match(configError({ QUEUE_PARTITIONS: '0' }).message, /QUEUE_PARTITIONS/);
});

test('invalid values: one ConfigError that names every variable and the value given', () => {
  const error = configError({ PORT: 'abc', LLM_TEMPERATURE: '9', LLM_BASE_URL: 'not a url', LEASE_MS: '5', REDIS_TLS: 'maybe', LOG_LEVEL: 'loud' });
  const lines = new Map(
    error.problems.map((problem) => {
      const name = problem.slice(0, problem.indexOf(':'));
      return [name, problem] as const;
    }),
  );
  assert.deepEqual([...lines.keys()].sort(), ['LEASE_MS', 'LLM_BASE_URL', 'LLM_TEMPERATURE', 'LOG_LEVEL', 'PORT', 'REDIS_TLS']);
  assert.match(lines.get('PORT') ?? '', /whole number.*\(got "abc"\)/);
  assert.match(lines.get('LLM_TEMPERATURE') ?? '', /between 0 and 2.*\(got "9"\)/);
  assert.match(lines.get('LLM_BASE_URL') ?? '', /URL.*\(got "not a url"\)/);
  assert.match(lines.get('LEASE_MS') ?? '', /at least 1000.*\(got "5"\)/);
  assert.match(lines.get('REDIS_TLS') ?? '', /true or false.*\(got "maybe"\)/);
  assert.match(lines.get('LOG_LEVEL') ?? '', /\(got "loud"\)/);
  // The message itself lists them all, one per line, for the start-up log.
  for (const problem of error.problems) assert.ok(error.message.includes(problem));
  assert.equal(error.message.split('\n').length, error.problems.length + 1);
});

test('out-of-range and malformed numbers say what is expected', () => {
  const error = configError({ PORT: '70000', LLM_TOP_P: '-1', WORKER_CONCURRENCY: '2.5', SESSION_TTL_SECONDS: '1e999' });
  assert.deepEqual(
    error.problems.map((problem) => problem.slice(0, problem.indexOf(':'))).sort(),
    ['LLM_TOP_P', 'PORT', 'SESSION_TTL_SECONDS', 'WORKER_CONCURRENCY'],
  );
  assert.ok(error.problems.some((problem) => /^PORT: must be at most 65535 \(got "70000"\)$/.test(problem)));
  assert.ok(error.problems.some((problem) => /^LLM_TOP_P: must be between 0 and 1 \(got "-1"\)$/.test(problem)));
  assert.ok(error.problems.some((problem) => /^WORKER_CONCURRENCY: expected a whole number \(got "2.5"\)$/.test(problem)));
});

test('a blank number is an error, not zero (PORT= must not mean "any port")', () => {
  const error = configError({ PORT: '', LEASE_MS: '  ' });
  assert.deepEqual(error.problems, ['PORT: expected a whole number (got "")', 'LEASE_MS: expected a whole number (got "  ")']);
});

test('CLAIM_IDLE_MS must be greater than LEASE_MS', () => {
  for (const [claim, lease] of [
    ['5000', '5000'],
    ['3000', '5000'],
  ] as const) {
    const error = configError({ CLAIM_IDLE_MS: claim, LEASE_MS: lease });
    assert.equal(error.problems.length, 1);
    assert.match(error.problems[0] ?? '', new RegExp(`CLAIM_IDLE_MS \\(${claim}\\) must be greater than LEASE_MS \\(${lease}\\)`));
  }
  assert.equal(loadConfig({ CLAIM_IDLE_MS: '5001', LEASE_MS: '5000' }).claimIdleMs, 5001);
});

test('LLM_PROVIDER=openai without LLM_BASE_URL is rejected', () => {
  for (const env of [{ LLM_PROVIDER: 'openai' }, { LLM_PROVIDER: 'openai', LLM_BASE_URL: '   ' }]) {
    const error = configError(env);
    assert.equal(error.problems.length, 1);
    assert.match(error.problems[0] ?? '', /LLM_PROVIDER=openai needs LLM_BASE_URL/);
  }
  assert.match(configError({ LLM_PROVIDER: 'gpt' }).problems[0] ?? '', /^LLM_PROVIDER: .*\(got "gpt"\)$/);
});

test('.env file: loaded into the environment, real environment variables win', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  const names = ['PARLEY_TEST_FROM_FILE', 'PARLEY_TEST_OVERRIDDEN', 'PARLEY_TEST_QUOTED'] as const;
  try {
    const path = join(dir, '.env');
    writeFileSync(path, ['# settings for this machine', 'PARLEY_TEST_FROM_FILE=file', 'PARLEY_TEST_OVERRIDDEN=file', 'PARLEY_TEST_QUOTED="two words"', ''].join('\n'));
    process.env.PARLEY_TEST_OVERRIDDEN = 'real';
    loadDotEnv(path);
    assert.equal(process.env.PARLEY_TEST_FROM_FILE, 'file');
    assert.equal(process.env.PARLEY_TEST_OVERRIDDEN, 'real');
    assert.equal(process.env.PARLEY_TEST_QUOTED, 'two words');
    // A missing file is not an error: it is optional.
    assert.doesNotThrow(() => loadDotEnv(join(dir, 'missing.env')));
  } finally {
    for (const name of names) Reflect.deleteProperty(process.env, name);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('.env file values feed the configuration, and are validated like any other', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  const saved = { PORT: process.env.PORT, SESSION_TTL_SECONDS: process.env.SESSION_TTL_SECONDS, LLM_TEMPERATURE: process.env.LLM_TEMPERATURE };
  try {
    const path = join(dir, '.env');
    writeFileSync(path, 'PORT=4100\nSESSION_TTL_SECONDS=120\nLLM_TEMPERATURE=3\n');
    delete process.env.PORT;
    delete process.env.SESSION_TTL_SECONDS;
    process.env.LLM_TEMPERATURE = '0.5';
    loadDotEnv(path);
    const config = loadConfig({ PORT: process.env.PORT, SESSION_TTL_SECONDS: process.env.SESSION_TTL_SECONDS, LLM_TEMPERATURE: process.env.LLM_TEMPERATURE });
    assert.equal(config.port, 4100);
    assert.equal(config.sessionTtlSeconds, 120);
    assert.equal(config.model.temperature, 0.5, 'the real environment overrides the invalid file value');
    writeFileSync(path, 'PARLEY_TEST_BAD_PORT=x\n');
    loadDotEnv(path);
    assert.match(configError({ PORT: process.env.PARLEY_TEST_BAD_PORT }).problems[0] ?? '', /^PORT: .*\(got "x"\)$/);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
    delete process.env.PARLEY_TEST_BAD_PORT;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the frame limit follows MESSAGE_MAX_CHARS unless WS_MAX_FRAME_BYTES overrides it', () => {
  assert.equal(loadConfig({}).wsMaxFrameBytes, 4 * 8000 + 4096);
  assert.equal(loadConfig({ MESSAGE_MAX_CHARS: '100' }).wsMaxFrameBytes, 4 * 100 + 4096);
  assert.equal(loadConfig({ MESSAGE_MAX_CHARS: '100', WS_MAX_FRAME_BYTES: '2048' }).wsMaxFrameBytes, 2048);
});

test('metrics: no listener and no public /metrics by default; METRICS_TOKEN must be a real secret', () => {
  const config = loadConfig({});
  assert.deepEqual([config.metricsPort, config.workerMetricsPort, config.metricsHost, config.metricsToken], [undefined, undefined, '127.0.0.1', undefined]);
  const set = loadConfig({ METRICS_PORT: '9100', WORKER_METRICS_PORT: '9101', METRICS_HOST: '10.0.0.5', METRICS_TOKEN: 'x'.repeat(16) });
  assert.deepEqual([set.metricsPort, set.workerMetricsPort, set.metricsHost, set.metricsToken], [9100, 9101, '10.0.0.5', 'x'.repeat(16)]);
  assert.throws(() => loadConfig({ METRICS_TOKEN: 'short' }), /METRICS_TOKEN: must be at least 16 characters/);
});
