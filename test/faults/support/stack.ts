/**
 * A whole Parley deployment made of real processes, for fault tests: a redis-server of its own
 * (optionally with append-only persistence), gateways and workers as child processes that a test
 * can kill, stop, continue and restart, and the fake OpenAI server as the model double.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai-server.js';
import { PER_ADDRESS_LIMITS_OFF } from '../../support/system.js';
import { waitUntil } from '../../support/wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export type Persistence = 'none' | 'everysec' | 'always';

export interface TestRedis {
  readonly url: string;
  readonly process: ChildProcess;
  /** kill -9, and wait until it is gone. */
  crash(): Promise<void>;
  /** Starts it again on the same port and folder (reloading its append-only file). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server of the test's own on a free port, so the test may stop, kill and restart it. */
export async function startTestRedis(persistence: Persistence = 'none'): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'parley-faults-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir];
  if (persistence !== 'none') args.push('--appendonly', 'yes', '--appendfsync', persistence);
  else args.push('--appendonly', 'no');
  const url = `redis://127.0.0.1:${port}`;
  const launch = async () => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    const answers = async () => {
      const client = createClient({ url, socket: { reconnectStrategy: false } });
      client.on('error', () => undefined);
      await client.connect();
      const pong = await client.ping();
      client.destroy();
      return pong === 'PONG';
    };
    // Refused connections are expected while it starts.
    await waitUntil(() => answers().catch(() => false), 10_000, `redis-server on port ${port} to answer`);
    return child;
  };
  let child = await launch();
  return {
    url,
    get process() {
      return child;
    },
    async crash() {
      child.kill('SIGKILL');
      await exited(child);
    },
    async restart() {
      child = await launch();
    },
    async stop() {
      child.kill('SIGKILL');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly url: string;
  signal(signal: NodeJS.Signals): void;
  /** Kills it (SIGKILL, or SIGTERM to let it stop gracefully) and waits for the exit. */
  kill(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  alive(): boolean;
}

export interface Stack {
  readonly model: FakeOpenAI;
  readonly env: Readonly<Record<string, string>>;
  readonly gateways: ManagedProcess[];
  readonly workers: ManagedProcess[];
  gatewayUrls(): string[];
  /** Starts gateway `index` again on its port (after it was killed). */
  restartGateway(index: number): Promise<void>;
  addWorker(): Promise<ManagedProcess>;
  stop(): Promise<void>;
}

function spawnPart(part: 'gateway' | 'worker', env: Readonly<Record<string, string>>, url: string): Promise<ManagedProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', `src/${part}/main.ts`], {
    cwd: ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const readyLine = part === 'gateway' ? 'gateway listening' : 'worker ready';
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (data: Buffer) => {
      if (output.length < 100_000) output += data.toString();
      if (output.includes(readyLine)) {
        child.stdout?.off('data', onData);
        // Keep draining, or a chatty process blocks on a full pipe.
        child.stdout?.resume();
        resolve({
          child,
          url,
          signal: (signal) => child.kill(signal),
          kill: async (signal = 'SIGKILL') => {
            child.kill(signal);
            await exited(child);
          },
          alive: () => child.exitCode === null && child.signalCode === null,
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.resume();
    child.once('exit', (code) => reject(new Error(`${part} exited with ${code} before it was ready:\n${output.slice(-3000)}`)));
  });
}

export interface StackOptions {
  readonly redisUrl: string;
  readonly gateways: number;
  readonly workers: number;
  readonly env?: Readonly<Record<string, string>>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const model = await startFakeOpenAI();
  const prefix = `pfault:${Math.random().toString(16).slice(2, 10)}:`;
  const env: Record<string, string> = {
    REDIS_URL: options.redisUrl,
    KEY_PREFIX: prefix,
    HOST: '127.0.0.1',
    LLM_BASE_URL: model.url,
    LLM_MODEL: 'fake-echo',
    LEASE_MS: '1500',
    CLAIM_IDLE_MS: '2500',
    CLAIM_INTERVAL_MS: '300',
    SHUTDOWN_GRACE_MS: '1000',
    FLUSH_INTERVAL_MS: '20',
    ...PER_ADDRESS_LIMITS_OFF,
    ...options.env,
  };
  const ports = await Promise.all(Array.from({ length: options.gateways }, () => freePort()));
  const startGateway = (port: number) => spawnPart('gateway', { ...env, PORT: String(port) }, `http://127.0.0.1:${port}`);
  const gateways = await Promise.all(ports.map(startGateway));
  const workers: ManagedProcess[] = [];
  const addWorker = async () => {
    const worker = await spawnPart('worker', env, '');
    workers.push(worker);
    return worker;
  };
  await Promise.all(Array.from({ length: options.workers }, () => addWorker()));
  return {
    model,
    env,
    gateways,
    workers,
    gatewayUrls: () => gateways.map((gateway) => gateway.url),
    async restartGateway(index) {
      const port = ports[index];
      if (port === undefined) throw new Error(`no gateway ${index}`);
      gateways[index] = await startGateway(port);
    },
    addWorker,
    async stop() {
      for (const part of [...gateways, ...workers]) if (part.alive()) part.signal('SIGCONT');
      await Promise.all([...gateways, ...workers].map((part) => part.kill('SIGKILL')));
      await model.close();
    },
  };
}
