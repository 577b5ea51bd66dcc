/**
 * A minimal Redis client speaking RESP2 over one TCP connection, for the harness's own Redis
 * work (INFO snapshots, MONITOR, preparing redis-benchmark data). It counts the bytes it sends
 * and receives, so the harness can subtract its own traffic from Redis's
 * total_net_input_bytes / total_net_output_bytes and report the pipeline's bytes per turn exactly.
 */
import { connect, type Socket } from 'node:net';

export type RespValue = string | number | null | RespError | RespValue[];

export class RespError extends Error {}

type Parsed = { value: RespValue; end: number } | undefined;

const CRLF = Buffer.from('\r\n');

function lineEnd(buffer: Buffer, from: number): number {
  return buffer.indexOf(CRLF, from);
}

/** Parses one RESP value at `offset`, or returns undefined when the buffer holds only part of it. */
export function parseResp(buffer: Buffer, offset: number): Parsed {
  const end = lineEnd(buffer, offset);
  if (end < 0) return undefined;
  const kind = String.fromCharCode(buffer[offset] ?? 0);
  const line = buffer.toString('utf8', offset + 1, end);
  switch (kind) {
    case '+':
      return { value: line, end: end + 2 };
    case '-':
      return { value: new RespError(line), end: end + 2 };
    case ':':
      return { value: Number(line), end: end + 2 };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: end + 2 };
      if (buffer.length < end + 2 + length + 2) return undefined;
      return { value: buffer.toString('utf8', end + 2, end + 2 + length), end: end + 2 + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: end + 2 };
      const items: RespValue[] = [];
      let cursor = end + 2;
      for (let index = 0; index < count; index += 1) {
        const item = parseResp(buffer, cursor);
        if (item === undefined) return undefined;
        items.push(item.value);
        cursor = item.end;
      }
      return { value: items, end: cursor };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(kind)}`);
  }
}

export function encodeCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''));
}

interface Waiter {
  resolve(value: RespValue): void;
  reject(error: Error): void;
}

export class RawRedis {
  /** Bytes this connection sent to Redis (Redis counts them as input). */
  sentBytes = 0;
  /** Bytes Redis sent to this connection (Redis counts them as output). */
  receivedBytes = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private readonly waiters: Waiter[] = [];
  private pushListener: ((value: RespValue) => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('Redis connection closed')));
  }

  static connect(host: string, port: number, timeoutMs = 5000): Promise<RawRedis> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`Redis at ${host}:${port} did not accept a connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawRedis(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Sends one command; rejects with RespError when Redis answers with an error. */
  command(...args: string[]): Promise<RespValue> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const bytes = encodeCommand(args);
    this.sentBytes += bytes.length;
    return new Promise((resolve, reject) => {
      this.waiters.push({
        resolve: (value) => (value instanceof RespError ? reject(value) : resolve(value)),
        reject,
      });
      this.socket.write(bytes);
    });
  }

  /** A command whose reply is text (INFO, bulk strings). */
  async text(...args: string[]): Promise<string> {
    const reply = await this.command(...args);
    return typeof reply === 'string' ? reply : JSON.stringify(reply);
  }

  /**
   * Turns this connection into a MONITOR feed: every command Redis executes arrives as one line.
   * The connection is useless for anything else afterwards.
   */
  async monitor(onLine: (line: string) => void): Promise<void> {
    // Listen before asking: the first lines may arrive in the same packet as the +OK.
    this.pushListener = (value) => {
      if (typeof value === 'string') onLine(value);
    };
    await this.command('MONITOR');
  }

  /** Deletes every key that starts with `prefix` (SCAN, then UNLINK: Redis stays responsive). */
  async deleteKeys(prefix: string): Promise<void> {
    let cursor = '0';
    do {
      const reply = await this.command('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000');
      if (!Array.isArray(reply)) return;
      cursor = String(reply[0]);
      const keys = Array.isArray(reply[1]) ? reply[1].map(String) : [];
      if (keys.length > 0) await this.command('UNLINK', ...keys);
    } while (cursor !== '0');
  }

  /** Local port of this connection: how Redis (CLIENT LIST, MONITOR) names it. */
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  close(): void {
    this.failure ??= new Error('closed by the harness');
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.receivedBytes += chunk.length;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    for (;;) {
      const parsed = parseResp(this.buffer, offset);
      if (parsed === undefined) break;
      offset = parsed.end;
      const waiter = this.waiters.shift();
      if (waiter !== undefined) waiter.resolve(parsed.value);
      else this.pushListener?.(parsed.value);
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

/** Parses `INFO` text into a flat map of field -> value. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}
