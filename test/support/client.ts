/**
 * A test client for the gateway: creates sessions over HTTP and records every WebSocket frame,
 * so tests can wait for what they expect and then look at everything that arrived.
 */
import { WebSocket } from 'ws';
import { STREAMING_SUBPROTOCOL } from '../../src/contracts/wire.js';

export interface SessionReply {
  token: string;
  name: string;
  session_start: string;
  messages: Array<Record<string, unknown>>;
  last_event_id?: string;
}

export async function createSession(baseUrl: string, name = 'Ada'): Promise<SessionReply> {
  const response = await fetch(`${baseUrl}/token?name=${encodeURIComponent(name)}`, { method: 'POST' });
  if (response.status !== 200) throw new Error(`POST /token answered ${response.status}`);
  return (await response.json()) as SessionReply;
}

/** The session with clean message texts (Parley's own API); `original: true` for /refresh_token. */
export async function refreshSession(
  baseUrl: string,
  token: string,
  { original = false } = {},
): Promise<{ status: number; body: SessionReply & { detail?: unknown } }> {
  const response = original
    ? await fetch(`${baseUrl}/refresh_token?token=${encodeURIComponent(token)}`)
    : await fetch(`${baseUrl}/api/v1/session`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as SessionReply & { detail?: unknown } };
}

export type Frame = Record<string, unknown> & { type?: string };

export class TestSocket {
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private waiters: Array<() => void> = [];
  /** Frame counts when each resume was sent: frames from there to its `resumed` are superseded. */
  private readonly resumesSentAt: number[] = [];
  private readonly superseded = new Set<Frame>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = String(data);
      this.raw.push(text);
      try {
        const frame = JSON.parse(text) as Frame;
        if (frame.type === 'resumed') for (const stale of this.frames.slice(this.resumesSentAt.shift() ?? this.frames.length)) this.superseded.add(stale);
        this.frames.push(frame);
      } catch {
        this.frames.push({ type: '<not json>', text });
      }
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.wake();
    });
  }

  static async open(baseUrl: string, token: string | null, streaming = true, headers: Record<string, string> = {}): Promise<TestSocket> {
    const url = `${baseUrl.replace(/^http/, 'ws')}/chat${token === null ? '' : `?token=${encodeURIComponent(token)}`}`;
    const ws = new WebSocket(url, streaming ? [STREAMING_SUBPROTOCOL] : [], { headers });
    const socket = new TestSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    if (streaming) await socket.waitFor((frame) => frame.type === 'ready' || socket.closeCode !== undefined, 5000).catch(() => undefined);
    return socket;
  }

  send(frame: unknown): void {
    if (typeof frame === 'object' && frame !== null && (frame as Frame).type === 'resume') this.resumesSentAt.push(this.frames.length);
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Resolves with the first frame (from the start) that matches; rejects after timeoutMs. */
  async waitFor(match: (frame: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.closeCode !== undefined) {
        const closed: Frame = { type: '<closed>' };
        if (match(closed)) return closed;
        throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) while waiting; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; frames so far: ${JSON.stringify(this.frames).slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until `count` frames match. */
  async waitForCount(match: (frame: Frame) => boolean, count: number, timeoutMs = 10_000): Promise<Frame[]> {
    await this.waitFor(() => this.frames.filter(match).length >= count, timeoutMs);
    return this.frames.filter(match);
  }

  async waitForClose(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    await this.waitFor((frame) => frame.type === '<closed>', timeoutMs);
    return { code: this.closeCode ?? 0, reason: this.closeReason };
  }

  /**
   * The answer of each turn as a streaming client reconstructs it: deltas after the latest start,
   * leaving out events that a later `resumed` superseded (they come again after it).
   */
  answers(): Map<number, string> {
    const texts = new Map<number, string>();
    for (const frame of this.frames) {
      if (this.superseded.has(frame)) continue;
      const seq = Number(frame.seq);
      if (frame.type === 'start') texts.set(seq, '');
      if (frame.type === 'delta') texts.set(seq, (texts.get(seq) ?? '') + String(frame.text));
    }
    return texts;
  }

  close(): void {
    this.ws.close();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
