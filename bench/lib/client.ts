/**
 * A benchmark client of one chat session: a real `ws` WebSocket in plain mode (the original
 * protocol: one JSON frame per finished answer) or streaming mode (parley.v1: every event).
 * It keeps the turns it sent in order and resolves each when its answer is done, with the send
 * and done times; in streaming mode it can also keep, per delta frame, how far into the answer
 * it reached and when it arrived (for the streaming-overhead figure), or the answer's text and
 * when its first and last delta arrived (for bench:model's token rates).
 */
import { WebSocket, type RawData } from 'ws';
import { STREAMING_SUBPROTOCOL } from '../../src/contracts/wire.js';
import { hrNowMs } from './stats.js';

export type Mode = 'plain' | 'streaming';

export interface DeltaMark {
  /** Characters of the answer received up to and including this delta frame. */
  readonly endChar: number;
  /** hrNowMs() when the frame arrived (comparable with the worker's yield times). */
  readonly at: number;
}

export interface TurnResult {
  readonly text: string;
  readonly ok: boolean;
  /** Error code for failed turns: the server's code, "closed", "timeout" or "rejected". */
  readonly error: string | undefined;
  /** performance.now() just before the frame was handed to the socket. */
  readonly sentAt: number;
  /** performance.now() when the done/answer frame arrived. */
  readonly doneAt: number;
  /** Characters of answer text received (plain: the answer's length). */
  readonly chars: number;
  /** Delta frames received for this turn (streaming mode): the number of batches. */
  readonly deltaFrames: number;
  readonly deltas: readonly DeltaMark[] | undefined;
  /** Streaming mode: performance.now() when "accepted" and the (last) "start" arrived. */
  readonly acceptedAt: number | undefined;
  readonly startAt: number | undefined;
  /** Streaming mode with keepText: the answer's text. */
  readonly answer: KeptText | undefined;
}

export interface KeptText {
  text: string;
  /** performance.now() when the first and the last delta frame arrived (0: none yet). */
  firstAt: number;
  lastAt: number;
}

interface PendingTurn {
  readonly text: string;
  readonly sentAt: number;
  readonly resolve: (result: TurnResult) => void;
  /** Streaming mode: the turn's seq, known once "accepted" arrived. */
  seq: number | undefined;
  acceptedAt: number | undefined;
  /** Streaming mode: what arrived for this turn's seq (possibly before "accepted"). */
  answer: AnswerState;
}

/** Events of one turn. They may arrive before its "accepted" frame: both travel separately. */
interface AnswerState {
  chars: number;
  deltaFrames: number;
  deltas: DeltaMark[] | undefined;
  kept: KeptText | undefined;
  startAt: number | undefined;
  /** Set when done/stopped/error arrived: the error code (undefined = done) and the time. */
  end: { error: string | undefined; at: number } | undefined;
}

interface Frame {
  type?: unknown;
  seq?: unknown;
  text?: unknown;
  code?: unknown;
  source?: unknown;
  msg?: unknown;
}

export interface SocketOptions {
  readonly recordDeltas?: boolean;
  readonly keepText?: boolean;
  readonly timeoutMs?: number;
  /** Extra upgrade request headers (X-Forwarded-For: a client address behind a trusted proxy). */
  readonly headers?: Record<string, string>;
}

/** POST /token: a new session; returns its token. */
export async function createSession(baseUrl: string, name = 'bench'): Promise<string> {
  const response = await fetch(`${baseUrl}/token?name=${encodeURIComponent(name)}`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
  if (response.status !== 200) throw new Error(`POST /token answered ${response.status}`);
  const body = (await response.json()) as { token?: unknown };
  if (typeof body.token !== 'string') throw new Error('POST /token returned no token');
  return body.token;
}

export function chatUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/^http/, 'ws')}/chat?token=${encodeURIComponent(token)}`;
}

export class BenchSocket {
  /** Sent, waiting for "accepted" (streaming) or for the answer (plain), oldest first. */
  private readonly unaccepted: PendingTurn[] = [];
  /** Streaming mode: accepted turns by seq. */
  private readonly bySeq = new Map<number, PendingTurn>();
  /** Streaming mode: events of seqs not accepted yet. */
  private readonly early = new Map<number, AnswerState>();
  private closedWith: string | undefined;

  private constructor(
    private readonly ws: WebSocket,
    readonly mode: Mode,
    private readonly recordDeltas: boolean,
    private readonly keepText: boolean,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code) => this.failAll(`closed:${code}`));
    ws.on('error', () => undefined);
  }

  /** Opens the socket; in streaming mode also waits for "ready" (the gateway has subscribed). */
  static open(baseUrl: string, token: string, mode: Mode, options: SocketOptions = {}): Promise<BenchSocket> {
    const ws = new WebSocket(chatUrl(baseUrl, token), mode === 'streaming' ? [STREAMING_SUBPROTOCOL] : [], { perMessageDeflate: false, headers: options.headers ?? {} });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('timeout opening the WebSocket'));
      }, options.timeoutMs ?? 15_000);
      const done = (error?: Error) => {
        clearTimeout(timer);
        ws.off('message', onReady);
        if (error === undefined) resolve(new BenchSocket(ws, mode, options.recordDeltas === true, options.keepText === true));
        else reject(error);
      };
      const onReady = (data: RawData) => {
        if (String(data).includes('"type":"ready"')) done();
      };
      ws.once('error', (error) => done(error));
      ws.once('close', (code) => done(new Error(`socket closed (${code}) while opening`)));
      if (mode === 'streaming') ws.on('message', onReady);
      else ws.once('open', () => done());
    });
  }

  get pending(): number {
    return this.unaccepted.length + this.bySeq.size;
  }

  get isOpen(): boolean {
    return this.closedWith === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  send(text: string): Promise<TurnResult> {
    return new Promise((resolve) => {
      const turn: PendingTurn = { text, sentAt: performance.now(), resolve, seq: undefined, acceptedAt: undefined, answer: this.newAnswer() };
      if (this.closedWith !== undefined) return this.finish(turn, this.closedWith);
      this.unaccepted.push(turn);
      this.ws.send(this.mode === 'plain' ? text : JSON.stringify({ type: 'message', text }));
    });
  }

  close(): void {
    this.ws.close();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    // Taken first, before parsing: the arrival time is what streaming overhead measures.
    const at = this.recordDeltas ? hrNowMs() : 0;
    if (isBinary) return;
    let frame: Frame;
    try {
      frame = JSON.parse(String(data)) as Frame;
    } catch {
      return;
    }
    if (this.mode === 'plain') this.onPlainFrame(frame);
    else this.onStreamingFrame(frame, at);
  }

  /** Plain mode: answers and turn errors arrive in message order; a seq-less error is a rejection. */
  private onPlainFrame(frame: Frame): void {
    if (frame.source === 'bot') {
      const turn = this.unaccepted.shift();
      if (turn !== undefined) {
        turn.answer.chars = typeof frame.msg === 'string' ? frame.msg.length : 0;
        this.finish(turn, undefined);
      }
    } else if (frame.type === 'error') {
      // A rejection concerns a message just sent; a turn error (with seq) the oldest one waiting.
      const turn = typeof frame.seq === 'number' ? this.unaccepted.shift() : this.unaccepted.pop();
      if (turn !== undefined) this.finish(turn, typeof frame.code === 'string' ? frame.code : 'error');
    }
  }

  private onStreamingFrame(frame: Frame, at: number): void {
    const seq = typeof frame.seq === 'number' ? frame.seq : undefined;
    if (frame.type === 'accepted') return this.onAccepted(seq);
    if (seq === undefined) {
      // A frame rejected before it was stored (no seq): the oldest message not yet accepted.
      const rejected = frame.type === 'error' ? this.unaccepted.shift() : undefined;
      if (rejected !== undefined) this.finish(rejected, typeof frame.code === 'string' ? frame.code : 'rejected');
      return;
    }
    const turn = this.bySeq.get(seq);
    const answer = turn?.answer ?? this.earlyAnswer(seq);
    switch (frame.type) {
      case 'start':
        // A new attempt (a worker took over) starts the answer again.
        answer.chars = 0;
        answer.deltaFrames = 0;
        answer.startAt = performance.now();
        if (answer.deltas !== undefined) answer.deltas = [];
        if (answer.kept !== undefined) answer.kept = { text: '', firstAt: 0, lastAt: 0 };
        return;
      case 'delta':
        if (typeof frame.text !== 'string') return;
        answer.chars += frame.text.length;
        answer.deltaFrames += 1;
        answer.deltas?.push({ endChar: answer.chars, at });
        if (answer.kept !== undefined) keepText(answer.kept, frame.text);
        return;
      case 'done':
      case 'stopped':
      case 'error':
        answer.end = { error: frame.type === 'done' ? undefined : typeof frame.code === 'string' ? frame.code : frame.type, at: performance.now() };
        if (turn !== undefined) this.finish(turn, answer.end.error, answer.end.at);
        return;
    }
  }

  private onAccepted(seq: number | undefined): void {
    const turn = this.unaccepted.shift();
    if (turn === undefined || seq === undefined) return;
    const early = this.early.get(seq);
    this.early.delete(seq);
    if (early !== undefined) turn.answer = early;
    turn.seq = seq;
    turn.acceptedAt = performance.now();
    this.bySeq.set(seq, turn);
    if (turn.answer.end !== undefined) this.finish(turn, turn.answer.end.error, turn.answer.end.at);
  }

  private earlyAnswer(seq: number): AnswerState {
    let answer = this.early.get(seq);
    if (answer === undefined) {
      answer = this.newAnswer();
      this.early.set(seq, answer);
    }
    return answer;
  }

  private newAnswer(): AnswerState {
    return { chars: 0, deltaFrames: 0, deltas: this.recordDeltas ? [] : undefined, kept: this.keepText ? { text: '', firstAt: 0, lastAt: 0 } : undefined, startAt: undefined, end: undefined };
  }

  private finish(turn: PendingTurn, error: string | undefined, doneAt = performance.now()): void {
    if (turn.seq !== undefined) this.bySeq.delete(turn.seq);
    turn.resolve({
      text: turn.text,
      ok: error === undefined,
      error,
      sentAt: turn.sentAt,
      doneAt,
      chars: turn.answer.chars,
      deltaFrames: turn.answer.deltaFrames,
      deltas: turn.answer.deltas,
      acceptedAt: turn.acceptedAt,
      startAt: turn.answer.startAt,
      answer: turn.answer.kept,
    });
  }

  private failAll(reason: string): void {
    this.closedWith = reason;
    for (const turn of this.unaccepted.splice(0)) this.finish(turn, reason);
    for (const turn of [...this.bySeq.values()]) this.finish(turn, reason);
  }
}

/** Adds a piece of answer text that arrived now. */
export function keepText(kept: KeptText, text: string): void {
  const now = performance.now();
  if (kept.firstAt === 0) kept.firstAt = now;
  kept.lastAt = now;
  kept.text += text;
}

/** Runs `task` over `items` with at most `limit` in flight; results keep the items' order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await task(items[index] as T, index);
    }
  });
  await Promise.all(runners);
  return results;
}
