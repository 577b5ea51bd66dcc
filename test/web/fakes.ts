/** Test doubles for the web protocol client: a manual clock, scripted sockets, a session API. */
import type { RefreshResult, SessionApi } from '../../web/src/protocol/session-api.js';
import { TransientError } from '../../web/src/protocol/session-api.js';
import type { ClientFrame, OpenSocket, SessionView, SocketConnection, SocketHandlers, Timers } from '../../web/src/protocol/types.js';

interface Pending {
  readonly at: number;
  readonly delay: number;
  readonly callback: () => void;
}

/** Timers that fire only when the test advances time. */
export class FakeClock implements Timers {
  now = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, delay: ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.pending.delete(handle);
  }

  /** Delays of the timers still waiting, in the order they were set. */
  delays(): number[] {
    return [...this.pending.values()].map((timer) => timer.delay);
  }

  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      let nextId: number | undefined;
      let next: Pending | undefined;
      for (const [id, timer] of this.pending) {
        if (timer.at <= target && (next === undefined || timer.at < next.at)) {
          nextId = id;
          next = timer;
        }
      }
      if (next === undefined || nextId === undefined) break;
      this.pending.delete(nextId);
      this.now = next.at;
      next.callback();
    }
    this.now = target;
  }
}

export class FakeSocket implements SocketConnection {
  readonly sent: string[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;

  constructor(
    readonly token: string,
    private readonly handlers: SocketHandlers,
  ) {}

  /** Like the gateway, confirm each resume at once with `resumed`; off to test the window before it. */
  confirmResumes = true;

  send(data: string): void {
    this.sent.push(data);
    const frame = JSON.parse(data) as ClientFrame;
    if (frame.type === 'resume' && this.confirmResumes) this.receive({ type: 'resumed', after: frame.after });
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
  }

  /** Frames the client sent, parsed. */
  frames(): ClientFrame[] {
    return this.sent.map((data) => JSON.parse(data) as ClientFrame);
  }

  framesOf<T extends ClientFrame['type']>(type: T): Extract<ClientFrame, { type: T }>[] {
    return this.frames().filter((frame): frame is Extract<ClientFrame, { type: T }> => frame.type === type);
  }

  receive(frame: object): void {
    this.handlers.onMessage(JSON.stringify(frame));
  }

  ready(lastEventId = '0'): void {
    this.receive({ type: 'ready', token: this.token, lastEventId, protocol: 'parley.v1' });
  }

  serverClose(code: number, reason = ''): void {
    this.handlers.onClose(code, reason);
  }
}

export function socketFactory(): { sockets: FakeSocket[]; open: OpenSocket; last(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    open: (token, handlers) => {
      const socket = new FakeSocket(token, handlers);
      sockets.push(socket);
      return socket;
    },
    last() {
      const socket = sockets.at(-1);
      if (socket === undefined) throw new Error('no socket opened');
      return socket;
    },
  };
}

/** A refresh_token double: answers from `session`, or expired, or a network failure. */
export class FakeApi implements Pick<SessionApi, 'refresh'> {
  calls = 0;
  mode: 'ok' | 'expired' | 'down' = 'ok';

  constructor(public session: SessionView) {}

  async refresh(): Promise<RefreshResult> {
    this.calls += 1;
    if (this.mode === 'down') throw new TransientError('down');
    if (this.mode === 'expired') return { kind: 'expired' };
    return { kind: 'ok', session: structuredClone(this.session) };
  }
}

export function session(overrides: Partial<SessionView> = {}): SessionView {
  return { token: 'tok-1', name: 'Ada', session_start: '2026-01-01T09:00:00.000Z', messages: [], last_event_id: '0', head: 0, ...overrides };
}

/** Lets pending promise callbacks (the client's async refresh) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

export function sequentialIds(prefix = 'c'): () => string {
  let next = 0;
  return () => `${prefix}-${++next}`;
}
