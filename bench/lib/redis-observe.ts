/**
 * What Redis itself says about a run: INFO snapshots (commandstats, net bytes, CPU, memory) and a
 * MONITOR tally of a turn's anatomy — which commands clients send (round trips) and which run
 * inside our Lua scripts, by script name.
 */
import { createHash } from 'node:crypto';
import * as scripts from '../../src/store/scripts.js';
import { parseInfo, RawRedis } from './resp.js';

export interface RedisSnapshot {
  readonly calls: ReadonlyMap<string, number>;
  readonly inputBytes: number;
  readonly outputBytes: number;
  readonly usedMemory: number;
  /** used_cpu_sys + used_cpu_user of the redis-server process, seconds. */
  readonly cpuSeconds: number;
  readonly version: string;
}

/** INFO sections the harness reads, in one command so a snapshot is one round trip. */
const INFO_ARGS = ['INFO', 'all'] as const;

export async function snapshot(redis: RawRedis): Promise<RedisSnapshot> {
  const info = parseInfo(await redis.text(...INFO_ARGS));
  const calls = new Map<string, number>();
  for (const [field, value] of info) {
    if (!field.startsWith('cmdstat_')) continue;
    const match = /calls=(\d+)/.exec(value);
    if (match?.[1] !== undefined) calls.set(field.slice('cmdstat_'.length), Number(match[1]));
  }
  const number = (name: string) => Number(info.get(name) ?? 0);
  return {
    calls,
    inputBytes: number('total_net_input_bytes'),
    outputBytes: number('total_net_output_bytes'),
    usedMemory: number('used_memory'),
    cpuSeconds: number('used_cpu_sys') + number('used_cpu_user'),
    version: info.get('redis_version') ?? 'unknown',
  };
}

/** Commands the harness itself sends between two snapshots; never part of the pipeline's cost. */
const HARNESS_COMMANDS = new Set(['info', 'monitor']);

/** Calls per command between two snapshots, without the harness's own commands. */
export function callDelta(before: RedisSnapshot, after: RedisSnapshot): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [name, calls] of after.calls) {
    const diff = calls - (before.calls.get(name) ?? 0);
    if (diff > 0 && !HARNESS_COMMANDS.has(name)) delta.set(name, diff);
  }
  return delta;
}

export function scriptNamesBySha(): Map<string, string> {
  const names = new Map<string, string>();
  for (const value of Object.values(scripts)) {
    if (typeof value === 'object' && value !== null && 'sha' in value && 'name' in value) {
      const script = value as scripts.LuaScript;
      names.set(script.sha, script.name);
    }
  }
  return names;
}

export interface Anatomy {
  /** MONITOR lines seen (all sources). */
  readonly lines: number;
  /** Commands clients sent, by name; EVALSHA split by script ("evalsha:startTurn"). */
  readonly topLevel: Record<string, number>;
  /** Commands run inside scripts, by name. */
  readonly inScripts: Record<string, number>;
  /** Per script: calls and commands run inside them. */
  readonly scripts: Record<string, { calls: number; commands: number }>;
}

/** The kind of a script call, by what ran inside it: startTurn without XADD found nothing to do. */
function scriptKind(name: string, inner: readonly string[]): string {
  if (name === 'startTurn' && !inner.includes('xadd')) return 'startTurn(idle)';
  return name;
}

/** Reads a MONITOR line: `1700000000.123456 [0 127.0.0.1:5555] "evalsha" "ab12…" "7" …`. */
function parseLine(line: string): { source: string; command: string; firstArg: string } | undefined {
  const open = line.indexOf('[');
  const close = line.indexOf(']', open);
  if (open < 0 || close < 0) return undefined;
  const source = line.slice(open + 1, close).split(' ')[1] ?? '';
  const quoted = /"((?:[^"\\]|\\.)*)"/g;
  quoted.lastIndex = close;
  const command = quoted.exec(line)?.[1]?.toLowerCase() ?? '';
  const firstArg = quoted.exec(line)?.[1] ?? '';
  return { source, command, firstArg };
}

export class MonitorTally {
  private lines = 0;
  private readonly topLevel = new Map<string, number>();
  private readonly inScripts = new Map<string, number>();
  private readonly scripts = new Map<string, { calls: number; commands: number }>();
  private current: { name: string; inner: string[] } | undefined;

  constructor(
    /** "host:port" of the harness's own connections, whose commands are not the pipeline's. */
    private readonly ignore: ReadonlySet<string>,
    private readonly shaNames: ReadonlyMap<string, string> = scriptNamesBySha(),
  ) {}

  onLine(line: string): void {
    this.lines += 1;
    const parsed = parseLine(line);
    if (parsed === undefined) return;
    if (parsed.source === 'lua') {
      this.current?.inner.push(parsed.command);
      return;
    }
    this.closeScript();
    if (this.ignore.has(parsed.source)) return;
    if (parsed.command === 'evalsha' || parsed.command === 'eval') {
      const name = parsed.command === 'evalsha' ? this.shaNames.get(parsed.firstArg) : this.shaNames.get(sha1(parsed.firstArg));
      this.current = { name: name ?? 'unknown-script', inner: [] };
      return;
    }
    bump(this.topLevel, parsed.command);
  }

  result(): Anatomy {
    this.closeScript();
    return {
      lines: this.lines,
      topLevel: Object.fromEntries(this.topLevel),
      inScripts: Object.fromEntries(this.inScripts),
      scripts: Object.fromEntries(this.scripts),
    };
  }

  private closeScript(): void {
    const call = this.current;
    if (call === undefined) return;
    this.current = undefined;
    const kind = scriptKind(call.name, call.inner);
    bump(this.topLevel, `evalsha:${kind}`);
    for (const command of call.inner) bump(this.inScripts, command);
    const entry = this.scripts.get(kind) ?? { calls: 0, commands: 0 };
    entry.calls += 1;
    entry.commands += call.inner.length;
    this.scripts.set(kind, entry);
  }
}

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

function sha1(text: string): string {
  // MONITOR escapes the script text; only unescaped sources hash right, which is enough to name
  // the rare EVAL fallback (first use of a script after Redis started).
  return createHash('sha1').update(text.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\')).digest('hex');
}

/** A MONITOR feed on its own connection; stop() returns the tally and the bytes it received. */
export async function startMonitor(host: string, port: number, ignore: Set<string>): Promise<{ tally: MonitorTally; connection: RawRedis; address: string }> {
  const connection = await RawRedis.connect(host, port);
  const address = `${host}:${connection.localPort}`;
  ignore.add(address);
  const tally = new MonitorTally(ignore);
  await connection.monitor((line) => tally.onLine(line));
  return { tally, connection, address };
}
