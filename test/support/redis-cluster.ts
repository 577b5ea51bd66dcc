/**
 * A real three-node Redis Cluster for tests, started from the installed redis-server in a temp
 * folder on random free ports, and removed again by stop().
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestRedisCluster {
  /** redis:// URL of the first node (any node will do for REDIS_URL). */
  readonly url: string;
  readonly ports: readonly number[];
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

export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cluster-'));
  const ports = await freePorts(3);
  const nodes: ChildProcess[] = ports.map((port) =>
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: 'ignore',
    }),
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
    await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
    await Promise.all(ports.map(waitForClusterOk));
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `redis://127.0.0.1:${ports[0]}`, ports, stop };
}
