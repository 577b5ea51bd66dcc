/**
 * A real Redis Cluster for tests: three primaries, optionally each with a replica (for failover
 * tests), started from the installed redis-server in a temp folder on random free ports, and
 * removed again by stop().
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ClusterOptions {
  /** One replica per primary (six nodes), so a primary can fail over. Default: none. */
  readonly replicas?: boolean;
  /** cluster-node-timeout: how long a silent node takes to be marked failed. Redis default 15 s. */
  readonly nodeTimeoutMs?: number;
}

export interface ClusterNode {
  readonly port: number;
  readonly role: 'master' | 'slave';
  /** Port of its primary (replicas only). */
  readonly masterPort: number | undefined;
  /** Marked failed by the cluster (fail flag). */
  readonly failed: boolean;
}

export interface TestRedisCluster {
  /** redis:// URL of the first node (any node will do for REDIS_URL). */
  readonly url: string;
  readonly ports: readonly number[];
  /** The nodes as a live node sees them now. */
  nodes(): Promise<ClusterNode[]>;
  /** SIGKILLs the node on this port (a crash: no failover handshake, no last writes). */
  kill(port: number): Promise<void>;
  /** Resolves when the replica on `replicaPort` serves as primary and every live node is ok. */
  waitForPromotion(replicaPort: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Cluster nodes also listen on port + 10000 (the cluster bus), so both must be free. */
async function freePorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const ports = Array.from({ length: count }, (_, index) => base + index);
    const checks = await Promise.all(ports.flatMap((port) => [portIsFree(port), portIsFree(port + 10_000)]));
    if (checks.every(Boolean)) return ports;
  }
  throw new Error('no free ports for a test Redis Cluster');
}

async function waitForPing(port: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    try {
      const { stdout } = await run('redis-cli', ['-p', String(port), 'ping']);
      if (stdout.trim() === 'PONG') return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not start`);
}

async function waitForClusterOk(port: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']);
    if (stdout.includes('cluster_state:ok')) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the test Redis Cluster did not reach cluster_state:ok');
}

/** Parses CLUSTER NODES ("<id> <ip:port@bus> <flags> <master id> ..."). */
async function readNodes(port: number): Promise<ClusterNode[]> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'nodes']);
  const rows = stdout
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
    .map(([id = '', address = '', flags = '', master = '']) => ({ id, port: Number(address.split('@')[0]?.split(':')[1]), flags: flags.split(','), master }));
  const portById = new Map(rows.map((row) => [row.id, row.port]));
  return rows.map((row) => ({
    port: row.port,
    role: row.flags.includes('master') ? 'master' : 'slave',
    masterPort: row.master === '-' ? undefined : portById.get(row.master),
    failed: row.flags.includes('fail'),
  }));
}

/** Every replica has finished its first sync (a failover before that would lose everything). */
async function waitForReplicasInSync(ports: readonly number[]): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const infos = await Promise.all(ports.map(async (port) => (await run('redis-cli', ['-p', String(port), 'info', 'replication'])).stdout));
    const replicas = infos.filter((info) => info.includes('role:slave'));
    if (replicas.length === ports.length / 2 && replicas.every((info) => info.includes('master_link_status:up'))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the replicas of the test Redis Cluster did not sync');
}

export async function startRedisCluster(options: ClusterOptions = {}): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cluster-'));
  const ports = await freePorts(options.replicas === true ? 6 : 3);
  const timeout = options.nodeTimeoutMs === undefined ? [] : ['--cluster-node-timeout', String(options.nodeTimeoutMs)];
  const nodes: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--save', '', '--appendonly', 'no', '--dir', dir, ...timeout],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    await Promise.all(
      nodes.map(
        (node) =>
          new Promise<void>((resolve) => {
            if (node.exitCode !== null) return resolve();
            node.once('exit', () => resolve());
            node.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(ports.map(waitForPing));
    const replicas = options.replicas === true ? '1' : '0';
    await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', replicas, '--cluster-yes']);
    await Promise.all(ports.map(waitForClusterOk));
    if (options.replicas === true) await waitForReplicasInSync(ports);
  } catch (error) {
    await stop();
    throw error;
  }
  const alive = () => ports.find((port, index) => nodes[index]?.exitCode === null && nodes[index]?.signalCode === null) ?? ports[0] ?? 0;
  return {
    url: `redis://127.0.0.1:${ports[0]}`,
    ports,
    nodes: () => readNodes(alive()),
    async kill(port) {
      const node = nodes[ports.indexOf(port)];
      if (node === undefined || node.exitCode !== null || node.signalCode !== null) throw new Error(`no running node on port ${port}`);
      await new Promise<void>((resolve) => {
        node.once('exit', () => resolve());
        node.kill('SIGKILL');
      });
    },
    async waitForPromotion(replicaPort, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const live = ports.filter((_, index) => nodes[index]?.exitCode === null && nodes[index]?.signalCode === null);
        const promoted = (await readNodes(replicaPort).catch(() => [])).some((node) => node.port === replicaPort && node.role === 'master');
        if (promoted) {
          const states = await Promise.all(live.map(async (port) => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout));
          if (states.every((state) => state.includes('cluster_state:ok'))) return;
        }
        if (Date.now() > deadline) throw new Error(`the replica on port ${replicaPort} did not take over within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    stop,
  };
}
