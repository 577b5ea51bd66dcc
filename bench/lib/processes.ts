/**
 * Child processes of the harness (redis-server, gateways, workers, helper clients): spawned with
 * their output in log files, stopped with SIGTERM then SIGKILL, and all killed when the harness
 * stops for any reason. Only loopback addresses are ever used.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const LOOPBACK = '127.0.0.1';

/** Enough descriptors for 10,000+ sockets; root may raise the hard limit, others get the hard limit. */
const RAISE_FD_LIMIT = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"';

export interface SpawnOptions {
  readonly env?: Readonly<Record<string, string>>;
  /** Open an IPC channel (bench/worker-main.ts and the idle-connection client use one). */
  readonly ipc?: boolean;
  /** Run through bash to raise the open-file limit first (`exec` keeps the pid). */
  readonly raiseFdLimit?: boolean;
}

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logPath: string;
}

/** Settings a benchmark must not inherit from the caller's shell (they would point elsewhere). */
const INHERITED_TO_DROP = /^(REDIS_|LLM_|KEY_PREFIX$|PORT$|HOST$|WORKER_|FLUSH_|LOG_|MODELS_DIR$|NODE_OPTIONS$)/;

function cleanEnv(extra: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !INHERITED_TO_DROP.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

export class ProcessGroup {
  private readonly children: Managed[] = [];

  constructor(private readonly logDir: string) {
    mkdirSync(logDir, { recursive: true });
  }

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Managed {
    const logPath = join(this.logDir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    const stdio: StdioOptions = ['ignore', fd, fd, ...(options.ipc === true ? (['ipc'] as const) : [])];
    const [file, argv] = options.raiseFdLimit === true ? ['bash', ['-c', RAISE_FD_LIMIT, command, ...args]] : [command, [...args]];
    const child = spawn(file, argv, { cwd: ROOT, env: cleanEnv(options.env ?? {}), stdio });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const managed: Managed = { name, child, pid: child.pid, logPath };
    this.children.push(managed);
    child.once('exit', () => {
      const index = this.children.indexOf(managed);
      if (index >= 0) this.children.splice(index, 1);
    });
    return managed;
  }

  /** SIGTERM, then SIGKILL after graceMs. Resolves once the process is gone. */
  async stop(managed: Managed, graceMs = 8000): Promise<void> {
    const { child } = managed;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(graceMs = 8000): Promise<void> {
    await Promise.all([...this.children].reverse().map((managed) => this.stop(managed, graceMs)));
  }

  /** Synchronous last resort for process 'exit' handlers, which cannot wait. */
  killAllNow(): void {
    for (const { child } of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}

/**
 * Ctrl+C, SIGTERM and a caller's own abort (a deadline) run `stop` once, then exit with the given
 * code; a second one kills at once. Whatever way the process exits, the group's children die too.
 */
export class Shutdown {
  /** True once stopping began: errors it causes in the running benchmark are not failures. */
  stopping = false;

  constructor(
    private readonly group: ProcessGroup,
    private readonly stop: (why: string) => Promise<void>,
  ) {
    process.on('SIGINT', () => this.abort('interrupted', 130));
    process.on('SIGTERM', () => this.abort('terminated', 143));
    process.on('exit', () => group.killAllNow());
  }

  abort(why: string, code: number): void {
    if (this.stopping) {
      this.group.killAllNow();
      process.exit(code);
    }
    this.stopping = true;
    void this.stop(why).finally(() => process.exit(code));
  }
}

export function logTail(path: string, lines = 20): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
}

/** Fails if the child exits before `ready` settles, with the end of its log in the message. */
export function untilReady<T>(managed: Managed, ready: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`${managed.name} exited (${signal ?? code}) before ${what}. Log ${managed.logPath}:\n${logTail(managed.logPath)}`));
    const timer = setTimeout(() => reject(new Error(`${managed.name}: no ${what} within ${timeoutMs} ms. Log ${managed.logPath}:\n${logTail(managed.logPath)}`)), timeoutMs);
    managed.child.once('exit', onExit);
    ready.then(
      (value) => {
        clearTimeout(timer);
        managed.child.off('exit', onExit);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        managed.child.off('exit', onExit);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** The first JSON log line (LOG_FORMAT=json) in `path` that matches; undefined until one is written. */
export function findLogLine(path: string, match: (line: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  for (const text of readFileSync(path, 'utf8').split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      const line = JSON.parse(text) as Record<string, unknown>;
      if (match(line)) return line;
    } catch {
      // the last line, still being written: it is whole at the next read
    }
  }
  return undefined;
}

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, LOOPBACK, () => server.close(() => resolve(true)));
  });
}

/** The first free port at or after `from` (the issue suggests 6390+ for the benchmark's Redis). */
export async function freePortFrom(from: number): Promise<number> {
  for (let port = from; port < from + 200; port += 1) {
    if (await portIsFree(port)) return port;
  }
  throw new Error(`no free port in ${from}..${from + 199}`);
}

/** A port the kernel considers free right now. */
export function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true or the time is up. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(intervalMs);
  }
  return false;
}

/** Resident memory of a process in KiB (VmRSS in /proc/<pid>/status), or null if unreadable. */
export function rssKiB(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux we build on. */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a process has used, or null if unreadable. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

export interface SchedTimes {
  /** Milliseconds the process's threads ran on a CPU. */
  readonly runMs: number;
  /** Milliseconds they were runnable but waited for a CPU (what a busy machine costs). */
  readonly waitMs: number;
}

/**
 * Run and run-queue time of all threads of a process, summed from /proc/PID/task/TID/schedstat
 * (nanoseconds; finer than the clock ticks of cpuSeconds). Undefined where there is no such file.
 */
export function schedTimes(pid: number): SchedTimes | undefined {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return undefined;
  let run = 0;
  let wait = 0;
  for (const tid of readdirSync(dir)) {
    try {
      const [onCpu = '0', waiting = '0'] = readFileSync(`${dir}/${tid}/schedstat`, 'utf8').trim().split(/\s+/);
      run += Number(onCpu);
      wait += Number(waiting);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { runMs: run / 1e6, waitMs: wait / 1e6 };
}

/** True for the addresses the harness may talk to: this machine only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}
