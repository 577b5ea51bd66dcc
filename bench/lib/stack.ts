/**
 * The system under test: a redis-server of the harness's own (or a running one), gateways
 * (`src/gateway/main.ts`, unchanged) and workers (`bench/worker-main.ts`: startWorker), each a
 * separate process like in production. The workers' model is either the real path (the
 * OpenAI-compatible provider over HTTP to bench/model-server.ts, a process of its own), the
 * BenchModelDouble inside the worker, which isolates the pipeline, or (bench:model) a real local
 * model in the deployed worker, `src/worker/main.ts`.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchModelSettings, YieldLog } from '../bench-model.js';
import { workerReplySchema, type WorkerReply, type WorkerRequest } from './ipc.js';
import { anyFreePort, findLogLine, freePortFrom, LOOPBACK, untilReady, waitUntil, type Managed, type ProcessGroup } from './processes.js';
import { RawRedis } from './resp.js';

export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** Our own redis-server's pid; null for a Redis we only target. */
  readonly pid: number | null;
}

/**
 * http: what users run (provider over HTTP to a model server); double: the model in the worker;
 * local: src/worker/main.ts as deployed, its LLM_* settings (LLM_PROVIDER=local) in extraEnv.
 */
export type ModelPath = 'http' | 'double' | 'local';

export interface StackSettings {
  /** Names this system in profile folders ("1x1", "2x2"). */
  readonly label: string;
  readonly redis: RedisEndpoint;
  readonly gateways: number;
  readonly workers: number;
  readonly keyPrefix: string;
  readonly model: BenchModelSettings;
  readonly modelPath: ModelPath;
  /** WORKER_CONCURRENCY; undefined = the product's default. */
  readonly workerConcurrency: number | undefined;
  readonly flushIntervalMs: number;
  /** SESSION_TTL_SECONDS; undefined = the product's default. */
  readonly sessionTtlSeconds?: number | undefined;
  /** Write V8 CPU profiles of gateways and workers into this folder (node --cpu-prof). */
  readonly cpuProfDir: string | undefined;
  /** Configuration on top of the benchmark's own (e.g. the fairness phase's per-address cap). */
  readonly extraEnv?: Readonly<Record<string, string>>;
}

export interface GatewayProcess {
  readonly url: string;
  /** Known when the harness started it (or --gateway-pid was given): for RSS and CPU. */
  readonly pid: number | null;
}

export interface Stack {
  readonly gateways: readonly GatewayProcess[];
  readonly workerPids: readonly number[];
  /** The workers' log files (JSON lines), for what they say about themselves. */
  readonly workerLogs: readonly string[];
  /** The workers' model; null for targeted systems. */
  readonly modelPath: ModelPath | null;
  /** bench/model-server.ts on the HTTP path (its CPU is the model's, not Parley's). */
  readonly modelServerPid: number | null;
  /** False for targeted systems and the local model: it cannot be reconfigured nor its yield times read. */
  readonly managedWorkers: boolean;
  configureModel(settings: BenchModelSettings): Promise<void>;
  takeYieldLogs(): Promise<YieldLog>;
  /**
   * One more gateway on the same Redis that has served nothing yet (its memory is a clean
   * baseline), with its own stop; null for targeted systems.
   */
  startFreshGateway(): Promise<{ gateway: GatewayProcess; stop(): Promise<void> } | null>;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
/** A local model may take longer to load than a process to start. */
const MODEL_LOAD_TIMEOUT_MS = 60_000;

/** Our own redis-server, or the one at `url`. */
export async function redisEndpoint(group: ProcessGroup, url: string | undefined, firstPort: number): Promise<RedisEndpoint> {
  if (url === undefined) return startRedis(group, firstPort);
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379), url, pid: null };
}

/** Another process may take the port between the check and redis-server binding it: then the next one. */
export async function startRedis(group: ProcessGroup, firstPort: number): Promise<RedisEndpoint> {
  for (let from = firstPort, attempt = 1; ; attempt += 1) {
    const port = await freePortFrom(from);
    try {
      return await startRedisOn(group, port);
    } catch (error) {
      if (attempt === 3) throw error;
      from = port + 1;
    }
  }
}

async function startRedisOn(group: ProcessGroup, port: number): Promise<RedisEndpoint> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-redis-'));
  const managed = group.spawn(
    'redis-server',
    'redis-server',
    // No persistence (the benchmark measures the pipeline, not disk); slowlog from 1 ms so the
    // profile step can see any slow script.
    ['--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir, '--slowlog-log-slower-than', '1000', '--slowlog-max-len', '256', '--protected-mode', 'yes'],
  );
  // Empty (no persistence), but a folder per run: gone with the server.
  managed.child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const answers = waitUntil(async () => {
    const client = await RawRedis.connect(LOOPBACK, port, 500);
    try {
      return (await client.command('PING')) === 'PONG';
    } finally {
      client.close();
    }
  }, START_TIMEOUT_MS);
  const answered = await untilReady(managed, answers, START_TIMEOUT_MS, 'answering PING').catch((error: unknown) => error);
  if (answered !== true) {
    await group.stop(managed, 1000);
    throw answered instanceof Error ? answered : new Error(`redis-server on port ${port} did not answer`);
  }
  return { host: LOOPBACK, port, url: `redis://${LOOPBACK}:${port}`, pid: managed.pid };
}

function commonEnv(settings: StackSettings): Record<string, string> {
  return {
    REDIS_URL: settings.redis.url,
    KEY_PREFIX: settings.keyPrefix,
    HOST: LOOPBACK,
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    LLM_PROVIDER: 'none',
    FLUSH_INTERVAL_MS: String(settings.flushIntervalMs),
    SHUTDOWN_GRACE_MS: '3000',
    // Every benchmark client comes from 127.0.0.1 and means to load the system: no limits, no
    // per-address cap, no admission control, as many sockets on one session as the idle phase opens.
    RATE_SESSIONS_PER_MINUTE: '0',
    RATE_UPGRADES_PER_MINUTE: '0',
    RATE_MESSAGES_PER_MINUTE: '0',
    RATE_SESSION_MESSAGES_PER_MINUTE: '0',
    RATE_RESUMES_PER_MINUTE: '0',
    MAX_ACTIVE_PER_ADDRESS: '0',
    MAX_QUEUE_WAIT_MS: '0',
    MAX_SOCKETS_PER_SESSION: '10000',
    ...(settings.sessionTtlSeconds === undefined ? {} : { SESSION_TTL_SECONDS: String(settings.sessionTtlSeconds) }),
    ...settings.extraEnv,
  };
}

/**
 * Node arguments of a gateway or worker. With profiling, each process gets a folder of its own:
 * tsx runs a module-loader thread that writes a profile too, and only the default file names
 * (which carry pid and thread id) keep the two apart; the summary takes the main thread's.
 */
function nodeArgs(settings: StackSettings, entry: string, name: string): string[] {
  const profile = settings.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(settings.cpuProfDir, `${settings.label}-${name}`)}`];
  return [...profile, '--import', 'tsx', entry];
}

async function startGateway(group: ProcessGroup, settings: StackSettings, index: number | string): Promise<{ gateway: GatewayProcess; managed: Managed }> {
  const port = await anyFreePort();
  const name = `gateway-${typeof index === 'number' ? index + 1 : index}`;
  const managed = group.spawn(name, process.execPath, nodeArgs(settings, 'src/gateway/main.ts', name), {
    env: { ...commonEnv(settings), PORT: String(port) },
    // 10,000 idle sockets need more descriptors than a default shell allows.
    raiseFdLimit: true,
  });
  const url = `http://${LOOPBACK}:${port}`;
  const healthy = waitUntil(async () => (await fetch(`${url}/healthz`)).status === 200, START_TIMEOUT_MS);
  if (!(await untilReady(managed, healthy, START_TIMEOUT_MS + 1000, 'answering /healthz'))) throw new Error(`${name} did not become healthy`);
  return { gateway: { url, pid: managed.pid }, managed };
}

/** Request/reply over a worker's IPC channel, one request at a time. */
class WorkerChannel {
  private readonly waiters: Array<{ type: WorkerReply['type']; resolve: (reply: WorkerReply) => void }> = [];

  constructor(readonly managed: Managed) {
    managed.child.on('message', (raw: unknown) => {
      const reply = workerReplySchema.safeParse(raw);
      if (!reply.success) return;
      const index = this.waiters.findIndex((waiter) => waiter.type === reply.data.type);
      const [waiter] = index >= 0 ? this.waiters.splice(index, 1) : [];
      waiter?.resolve(reply.data);
    });
  }

  next(type: WorkerReply['type']): Promise<WorkerReply> {
    return new Promise((resolve) => this.waiters.push({ type, resolve }));
  }

  async request(message: WorkerRequest, replyType: WorkerReply['type']): Promise<WorkerReply> {
    const reply = this.next(replyType);
    sendTo(this.managed.child, message);
    return untilReady(this.managed, reply, 30_000, `a "${replyType}" reply`);
  }
}

function sendTo(child: ChildProcess, message: WorkerRequest): void {
  if (child.connected) child.send(message);
}

/** The model server of the HTTP path; its channel takes the same configure / yields requests as a worker's. */
async function startModelServer(group: ProcessGroup, settings: StackSettings): Promise<{ channel: WorkerChannel; baseUrl: string }> {
  const managed = group.spawn(`model-server-${settings.label}`, process.execPath, nodeArgs(settings, 'bench/model-server.ts', 'model-server'), { ipc: true });
  const channel = new WorkerChannel(managed);
  const listening = await untilReady(managed, channel.next('listening'), START_TIMEOUT_MS, 'listening');
  const port = listening.type === 'listening' ? listening.port : 0;
  await channel.request({ type: 'configure', model: settings.model }, 'configured');
  return { channel, baseUrl: `http://${LOOPBACK}:${port}/v1` };
}

async function startWorkerProcess(group: ProcessGroup, settings: StackSettings, index: number, modelUrl: string | undefined): Promise<WorkerChannel> {
  const name = `worker-${index + 1}`;
  const managed = group.spawn(name, process.execPath, nodeArgs(settings, 'bench/worker-main.ts', name), {
    env: {
      ...commonEnv(settings),
      ...(settings.workerConcurrency === undefined ? {} : { WORKER_CONCURRENCY: String(settings.workerConcurrency) }),
      ...(modelUrl === undefined ? {} : { BENCH_MODEL: 'http', LLM_PROVIDER: 'openai', LLM_BASE_URL: modelUrl, LLM_MODEL: 'bench' }),
      BENCH_TOKENS: String(settings.model.tokens),
      BENCH_RATE: String(settings.model.rate),
      BENCH_RECORD_YIELDS: settings.model.recordYields ? '1' : '0',
    },
    ipc: true,
  });
  const channel = new WorkerChannel(managed);
  await untilReady(managed, channel.next('ready'), START_TIMEOUT_MS, 'reporting ready');
  return channel;
}

/** The deployed worker: ready once it logs so, which needs LOG_LEVEL info. */
async function startDeployedWorker(group: ProcessGroup, settings: StackSettings, index: number): Promise<Managed> {
  const name = `worker-${index + 1}`;
  const managed = group.spawn(name, process.execPath, nodeArgs(settings, 'src/worker/main.ts', name), { env: { ...commonEnv(settings), LOG_LEVEL: 'info' } });
  const ready = waitUntil(async () => findLogLine(managed.logPath, (line) => line.msg === 'worker ready') !== undefined, MODEL_LOAD_TIMEOUT_MS);
  if (!(await untilReady(managed, ready, MODEL_LOAD_TIMEOUT_MS + 1000, 'logging "worker ready"'))) throw new Error(`${name} did not log "worker ready"`);
  return managed;
}

/** Starts gateways and workers on the harness's Redis; stop() ends them (SIGTERM, then SIGKILL). */
export async function startStack(group: ProcessGroup, settings: StackSettings): Promise<Stack> {
  if (settings.cpuProfDir !== undefined) mkdirSync(settings.cpuProfDir, { recursive: true });
  const gateways = await Promise.all(Array.from({ length: settings.gateways }, (_, index) => startGateway(group, settings, index)));
  const server = settings.modelPath === 'http' ? await startModelServer(group, settings) : undefined;
  const local = settings.modelPath === 'local';
  const channels = local ? [] : await Promise.all(Array.from({ length: settings.workers }, (_, index) => startWorkerProcess(group, settings, index, server?.baseUrl)));
  const workers = local ? await Promise.all(Array.from({ length: settings.workers }, (_, index) => startDeployedWorker(group, settings, index))) : channels.map((channel) => channel.managed);
  // Who holds the model: the model server on the HTTP path, each worker's double otherwise.
  const models = server === undefined ? channels : [server.channel];
  return {
    gateways: gateways.map(({ gateway }) => gateway),
    workerPids: workers.map((worker) => worker.pid),
    workerLogs: workers.map((worker) => worker.logPath),
    modelPath: settings.modelPath,
    modelServerPid: server?.channel.managed.pid ?? null,
    managedWorkers: !local,
    async configureModel(model) {
      if (local) throw new Error('the local model cannot be reconfigured');
      await Promise.all(models.map((holder) => holder.request({ type: 'configure', model }, 'configured')));
    },
    async startFreshGateway() {
      const { gateway, managed } = await startGateway(group, settings, 'fresh');
      return { gateway, stop: () => group.stop(managed) };
    },
    async takeYieldLogs() {
      const replies = await Promise.all(models.map((holder) => holder.request({ type: 'yields' }, 'yields')));
      return Object.assign({}, ...replies.map((reply) => (reply.type === 'yields' ? reply.log : {}))) as YieldLog;
    },
    async stop() {
      // Workers first, so none is left waiting on a gateway; each gets time to write its profile.
      await Promise.all(workers.map((worker) => group.stop(worker)));
      await Promise.all(gateways.map(({ managed }) => group.stop(managed)));
      if (server !== undefined) await group.stop(server.channel.managed);
    },
  };
}

/** A system someone else runs: the harness only talks to it. */
export function targetStack(urls: readonly string[], gatewayPid: number | null): Stack {
  return {
    gateways: urls.map((url, index) => ({ url, pid: index === 0 ? gatewayPid : null })),
    workerPids: [],
    workerLogs: [],
    modelPath: null,
    modelServerPid: null,
    managedWorkers: false,
    configureModel: async () => {
      throw new Error('the model of a targeted system cannot be reconfigured');
    },
    takeYieldLogs: async () => ({}),
    startFreshGateway: async () => null,
    stop: async () => undefined,
  };
}
