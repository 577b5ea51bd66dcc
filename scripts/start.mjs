#!/usr/bin/env node
// `npm start` — the one command a new user runs: installs dependencies when needed, builds,
// finds Redis (or starts a local redis-server with append-only persistence in .data/redis),
// then runs a gateway and a worker and prints the URL. `npm run gateway` / `npm run worker`
// (this script with "gateway" or "worker") build when needed and run just that process.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { installIfNeeded, newestMtime, npm, ROOT, run, say } from './install.mjs';

const only = process.argv[2]; // undefined | 'gateway' | 'worker'
const EXIT_CONFIG = 78;

function buildIfNeeded() {
  const stamp = join(ROOT, 'dist', '.build-stamp');
  const sources = Math.max(...['src', 'web', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'].map((path) => newestMtime(join(ROOT, path))));
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= sources) return;
  say('Building…');
  run(npm, ['run', '--silent', 'build']);
  writeFileSync(stamp, new Date().toISOString());
}

function loadDotEnv() {
  const path = join(ROOT, '.env');
  if (existsSync(path)) process.loadEnvFile(path);
}

function answersRedisPing(host, port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const finish = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    // +PONG, or -NOAUTH from a Redis that wants a password: either way a Redis answers there.
    socket.once('data', (data) => finish(/^(\+PONG|-NOAUTH|-ERR)/.test(data.toString())));
  });
}

async function waitForRedis(host, port, child) {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (child.exitCode !== null) return false;
    if (await answersRedisPing(host, port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Returns the redis-server child we started, or null when a configured or running one is used. */
async function ensureRedis() {
  if (process.env.REDIS_URL || process.env.REDIS_HOST || process.env.REDIS_PORT) {
    say('Using the Redis configured in REDIS_URL / REDIS_HOST / REDIS_PORT.');
    return null;
  }
  if (await answersRedisPing('127.0.0.1', 6379)) {
    say('Using the Redis that answers on 127.0.0.1:6379.');
    return null;
  }
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.error !== undefined || found.status !== 0) {
    say('No Redis is configured, none answers on 127.0.0.1:6379, and redis-server is not installed.');
    say('Install one and run `npm start` again:');
    say('  Debian/Ubuntu: sudo apt-get install -y redis-server');
    say('  macOS:         brew install redis');
    say('  or point Parley at a Redis you have: REDIS_URL=redis://host:6379 (rediss:// for TLS) in .env');
    process.exit(1);
  }
  const dir = join(ROOT, '.data', 'redis');
  mkdirSync(dir, { recursive: true });
  say(`Starting a local redis-server on 127.0.0.1:6379 (data with append-only persistence in ${dir})…`);
  const child = spawn('redis-server', ['--port', '6379', '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!(await waitForRedis('127.0.0.1', 6379, child))) {
    say('redis-server did not start; see its output above.');
    process.exit(1);
  }
  return child;
}

function supervise(name, children, onFatal) {
  let restarts = [];
  const start = () => {
    const child = spawn(process.execPath, ['--enable-source-maps', join(ROOT, 'dist', name, 'main.js')], {
      cwd: ROOT,
      env: { ...process.env, LOG_FORMAT: process.env.LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json') },
      stdio: 'inherit',
    });
    children.set(name, child);
    child.once('exit', (code, signal) => {
      if (children.stopping) return;
      if (code === EXIT_CONFIG) return onFatal(`${name}: fix the configuration above and start again.`);
      restarts = restarts.filter((at) => Date.now() - at < 60_000);
      if (restarts.length >= 5) return onFatal(`${name} keeps crashing (5 times in a minute); stopping.`);
      restarts.push(Date.now());
      say(`${name} exited (${signal ?? code}); restarting in 1 s.`);
      setTimeout(start, 1000);
    });
  };
  start();
}

async function main() {
  installIfNeeded();
  buildIfNeeded();
  loadDotEnv();
  const redis = only === undefined ? await ensureRedis() : null;
  if (redis !== null) process.env.REDIS_URL = 'redis://127.0.0.1:6379';
  const children = new Map();
  const stopAll = async (exitCode) => {
    if (children.stopping) return;
    children.stopping = true;
    const exits = [...children.values()].filter((child) => child.exitCode === null).map((child) => new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    }));
    await Promise.all(exits);
    if (redis !== null && redis.exitCode === null) {
      await new Promise((resolve) => {
        redis.once('exit', resolve);
        redis.kill('SIGTERM');
      });
    }
    process.exit(exitCode);
  };
  const onFatal = (message) => {
    say(message);
    void stopAll(1);
  };
  for (const name of only === undefined ? ['gateway', 'worker'] : [only]) supervise(name, children, onFatal);
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  if (only !== 'worker') {
    const port = process.env.PORT ?? '3500';
    say(`Parley is starting: open http://localhost:${port} (Ctrl+C stops everything).`);
  }
}

await main();
