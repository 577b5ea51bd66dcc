/**
 * A seeded fuzzer for a running gateway: malformed raw HTTP requests, upgrade requests and
 * WebSocket frames in both modes. Same seed, same inputs (the gateway's answers may still differ
 * in timing). Every reply is classified so a run can be quoted: see docs/security.md.
 */
import { WebSocket } from 'ws';
import { STREAMING_SUBPROTOCOL } from '../../src/contracts/wire.js';
import { rawRequest, upgradeRequest, type RawReply } from './raw-http.js';

/** mulberry32: small, fast, good enough to pick inputs, and reproducible from one number. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Picker {
  constructor(readonly random: () => number) {}
  int(max: number): number {
    return Math.floor(this.random() * max);
  }
  one<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('empty choice');
    return item;
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  bytes(length: number): Buffer<ArrayBuffer> {
    return Buffer.from(Array.from({ length }, () => this.int(256)));
  }
  /** Text with a bias towards characters that break parsers. */
  text(length: number): string {
    const alphabet = ['a', 'Z', '0', ' ', '%', '/', '\\', '?', '#', '[', ']', '@', ':', '"', "'", '<', '>', '{', '}', '\u0000', '\r', '\n', '\t', 'é', '😀', '\ud800', '\udfff', '\u202e', '\ufeff'];
    return Array.from({ length }, () => this.one(alphabet)).join('');
  }
}

export interface FuzzCounts {
  httpRequests: number;
  upgradeRequests: number;
  socketsOpened: number;
  framesSent: number;
  wellBehavedTurns: number;
  replies: Record<string, number>;
  /** Replies that break the contract (5xx, close 1011, internal_error frames, a wrong answer). */
  violations: string[];
}

export interface FuzzTarget {
  readonly port: number;
  /** A valid session token (frames are sent on it). */
  newToken(): Promise<string>;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PRI', 'G E T', '', 'GET\u0000', 'X'.repeat(300)];
const PATHS = [
  '/', '/token', '/token?name=', '/token?name=%', '/token?name=%E0%A4%A', '/refresh_token?token=', '/refresh_token?token=%00', '/refresh_token?token[]=1',
  '/refresh_token?token=__proto__', '/healthz', '/readyz', '/metrics', '/chat', '/chat?token=%', '//x:abc/', '//[', '//:99999', '//%00', '*', '/..%2f..%2fetc/passwd',
  `/${'a'.repeat(10_000)}`, '/assets/../../package.json', '/index.html', 'http://evil.example/', '/?constructor=1&__proto__[x]=1', '/%', '/\u00ff',
  '/api/v1/auth/config', '/api/v1/auth/signup', '/api/v1/auth/signin', '/api/v1/auth/me', '/api/v1/auth/tokens', '/api/v1/auth/signout', '/api/v1/auth/signout-all',
  '/api/v1/auth/oidc/start?invite=%', '/api/v1/auth/oidc/callback?code=%&state=', '/api/v1/me', '/api/v1/me/export',
];
const HEADER_NAMES = ['X-CSRF-Token', 'Content-Type', 'Content-Length', 'Transfer-Encoding', 'Authorization', 'Origin', 'Host', 'X-Forwarded-Proto', 'X-Forwarded-For', 'Cookie', 'Accept-Encoding', 'Range', 'Expect', 'Sec-WebSocket-Protocol', 'Bad Header', 'X\u0000'];
const HEADER_VALUES = ['parley_auth=a_AAAAAAAAAAAAAAAAAAAAAA.x', 'parley_auth=%zz; parley_auth=', 'Bearer parley_a_AAAAAAAAAAAAAAAAAAAAAA.' + 'A'.repeat(43), 'application/json', 'text/plain', '-1', '99999999999', 'chunked', 'chunked, gzip', 'Bearer ', 'Bearer x y', 'null', 'http://evil.example', '', 'bytes=0-0,1-1', '100-continue', 'gzip, br', 'parley.token.', 'parley.v1, parley.token.x'];
const BODIES = ['', '{', '{"name":"Ada"}', '{"username":"ada","password":"correct horse"}', '{"username":["x"],"password":{"a":1}}', '{"username":"ada","password":"\\ud800\\ud800\\ud800\\ud800"}', '{"name":{"__proto__":{"x":1}}}', '{"constructor":{"prototype":{"x":1}}}', `${'['.repeat(5000)}${']'.repeat(5000)}`, '\u0000\u0001', 'name=Ada', '"\\ud800"', JSON.stringify({ name: 'x'.repeat(70_000) })];

function classifyHttp(reply: RawReply, counts: FuzzCounts, label: string): void {
  const key = reply.status === undefined ? `http:no-reply:${reply.end}` : reply.status === 101 ? 'http:101' : `http:${Math.floor(reply.status / 100)}xx`;
  counts.replies[key] = (counts.replies[key] ?? 0) + 1;
  if (reply.status !== undefined && reply.status >= 500) counts.violations.push(`${label} → ${reply.status}`);
  // A close without a status line leaves a client guessing. (A reset may race the server's reply
  // while a large body is still being sent, and a server waiting for a promised body stays quiet.)
  if (reply.status === undefined && reply.end === 'closed') counts.violations.push(`${label} → closed without a reply`);
}

function randomRequest(pick: Picker): Buffer {
  const method = pick.one(METHODS);
  const path = pick.chance(0.8) ? pick.one(PATHS) : `/${pick.text(pick.int(40))}`;
  const version = pick.one(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1\u0000', '']);
  const lines = [`${method} ${path} ${version}`];
  if (pick.chance(0.9)) lines.push('Host: 127.0.0.1');
  for (let index = pick.int(5); index > 0; index -= 1) lines.push(`${pick.one(HEADER_NAMES)}: ${pick.one(HEADER_VALUES)}`);
  if (pick.chance(0.05)) lines.push(`X-Long: ${'v'.repeat(20_000)}`);
  const body = pick.one(BODIES);
  if (pick.chance(0.7)) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  lines.push('Connection: close');
  const text = `${lines.join(pick.chance(0.9) ? '\r\n' : '\n')}\r\n\r\n${body}`;
  return pick.chance(0.05) ? Buffer.concat([Buffer.from(text), pick.bytes(64)]) : Buffer.from(text, 'utf8');
}

function randomUpgrade(pick: Picker, token: string): string {
  const target = pick.one([...PATHS, `/chat?token=${token}`, `/chat?token=${token}&token=x`, `//x:abc/chat?token=${token}`, '/chat?token=%zz']);
  const headers: Record<string, string> = {};
  if (pick.chance(0.3)) headers.Origin = pick.one(['null', 'http://evil.example', 'http://127.0.0.1', '%', 'file://']);
  if (pick.chance(0.3)) headers['Sec-WebSocket-Protocol'] = pick.one(['parley.v1', `parley.v1, parley.token.${token}`, 'parley.token.', ',,,', 'a b', 'x'.repeat(5000)]);
  if (pick.chance(0.2)) headers['Sec-WebSocket-Version'] = pick.one(['8', '99', 'x']);
  if (pick.chance(0.2)) headers['Sec-WebSocket-Extensions'] = pick.one(['permessage-deflate; client_max_window_bits=99', 'x-unknown', ';;;']);
  const upgrade = pick.one(['websocket', 'websocket', 'h2c', 'WebSocket', 'tls/1.0', '']);
  let request = upgradeRequest(target, headers, upgrade);
  if (pick.chance(0.2)) request = request.replace('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `Sec-WebSocket-Key: ${pick.one(['', 'short', '%%%%'])}`);
  return request;
}

type FramePayload = { data: string | Buffer; binary: boolean };

function nested(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

function randomFrame(pick: Picker, streaming: boolean, maxFrameBytes: number): FramePayload {
  const kind = pick.int(12);
  switch (kind) {
    case 0:
      return { data: pick.bytes(pick.int(200)), binary: true };
    case 1:
      // Invalid UTF-8 in a text frame: the gateway must close with 1007, nothing else.
      return { data: Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0xfe, 0x7d]), binary: false };
    case 2:
      return { data: JSON.stringify({ type: 'message', text: `lone ${pick.one(['\ud800', '\udc00', '\udbff'])} surrogate` }), binary: false };
    case 3:
      return { data: 'x'.repeat(maxFrameBytes + 1 + pick.int(1000)), binary: false };
    case 4:
      return { data: streaming ? nested(1000 + pick.int(5000)) : nested(50), binary: false };
    case 5:
      return { data: pick.one(['{"__proto__":{"type":"message"},"type":"ping"}', '{"type":"message","text":"hi","__proto__":{"x":1}}', '{"constructor":{"prototype":{"type":"ping"}}}', '{"type":"constructor"}', '{"type":"__proto__"}', '{"type":"toString"}']), binary: false };
    case 6:
      return { data: JSON.stringify({ type: pick.one(['message', 'stop', 'resume', 'ping', 'edit', 'regenerate', 'switch', 'nope']), text: pick.text(pick.int(30)), seq: pick.one([0, -1, 1.5, 2 ** 60, '1', null]), after: pick.one(['0', 'x', '99999999999999999999-1', '18446744073709551615-18446744073709551615', '1-2-3']), clientId: pick.one(['ok', '', 'x'.repeat(100), 'a b']) }), binary: false };
    case 7:
      return { data: pick.text(pick.int(100)), binary: false };
    case 8:
      return { data: pick.one(['', ' ', '\u0000', 'null', '[]', '1', '"type"', 'true', '{}', '{"type":1}']), binary: false };
    default:
      return { data: streaming ? JSON.stringify({ type: 'message', text: pick.text(1 + pick.int(50)) }) : pick.text(1 + pick.int(50)), binary: false };
  }
}

/** Sends a batch of frames on one socket and classifies everything that comes back. */
async function fuzzSocket(target: FuzzTarget, pick: Picker, counts: FuzzCounts, frames: number, maxFrameBytes: number): Promise<void> {
  const token = await target.newToken();
  const streaming = pick.chance(0.5);
  const ws = new WebSocket(`ws://127.0.0.1:${target.port}/chat?token=${token}`, streaming ? [STREAMING_SUBPROTOCOL] : []);
  const tally = (key: string) => (counts.replies[key] = (counts.replies[key] ?? 0) + 1);
  let leaving = false;
  const closed = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(data)) as Record<string, unknown>;
      } catch {
        counts.violations.push(`non-JSON frame from the gateway: ${String(data).slice(0, 80)}`);
        return;
      }
      if (frame.type === 'error') {
        tally(`frame:error:${String(frame.code)}`);
        if (frame.code === 'internal_error') counts.violations.push(`internal_error frame: ${JSON.stringify(frame)}`);
      } else tally(`frame:${String(frame.type ?? (frame.source === 'bot' ? 'plain-answer' : 'other'))}`);
    });
    ws.on('close', (code) => {
      tally(leaving ? 'close:by-fuzzer' : `close:${code}`);
      if (code === 1011) counts.violations.push('close 1011 (internal error)');
      resolve();
    });
    ws.on('error', () => resolve());
  });
  await new Promise<void>((resolve) => {
    ws.once('open', () => resolve());
    ws.once('error', () => resolve());
  });
  counts.socketsOpened += 1;
  for (let index = 0; index < frames && ws.readyState === WebSocket.OPEN; index += 1) {
    const frame = randomFrame(pick, streaming, maxFrameBytes);
    ws.send(frame.data, { binary: frame.binary });
    counts.framesSent += 1;
  }
  // Give the gateway time to answer what it got, then leave (if it has not closed on us).
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 150))]);
  leaving = true;
  ws.terminate();
  await closed;
}

export interface FuzzOptions {
  readonly seed: number;
  /** Number of rounds; each sends one raw request, one upgrade request and a few frames. */
  readonly size: number;
  readonly maxFrameBytes: number;
  /** Called every few rounds: a well-behaved client's turn; rejects when its answer is wrong. */
  readonly wellBehaved: (round: number) => Promise<void>;
}

export async function fuzzGateway(target: FuzzTarget, options: FuzzOptions): Promise<FuzzCounts> {
  const pick = new Picker(seededRandom(options.seed));
  const counts: FuzzCounts = { httpRequests: 0, upgradeRequests: 0, socketsOpened: 0, framesSent: 0, wellBehavedTurns: 0, replies: {}, violations: [] };
  const token = await target.newToken();
  for (let round = 0; round < options.size; round += 1) {
    const request = randomRequest(pick);
    classifyHttp(await rawRequest(target.port, request, 300), counts, `request ${JSON.stringify(request.subarray(0, 120).toString('latin1'))}`);
    counts.httpRequests += 1;
    const upgrade = randomUpgrade(pick, token);
    const reply = await rawRequest(target.port, upgrade, 200);
    classifyHttp(reply, counts, `upgrade ${JSON.stringify(upgrade.split('\r\n')[0])}`);
    counts.upgradeRequests += 1;
    if (round % 4 === 0) await fuzzSocket(target, pick, counts, 1 + pick.int(12), options.maxFrameBytes);
    if (round % 10 === 0) {
      await options.wellBehaved(round);
      counts.wellBehavedTurns += 1;
    }
  }
  return counts;
}
