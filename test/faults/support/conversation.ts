/**
 * A checking client for fault tests: one session that sends messages one after another over a
 * streaming socket, the way a careful client does, whatever fails: it reconnects (to the next
 * gateway) with backoff, resumes after its last event id (counting only what follows the
 * gateway's `resumed`), and resends what was not accepted with the same clientId. It records
 * everything, so the test can count what was lost, duplicated, out of order or wrong.
 */
import { WebSocket } from 'ws';
import { STREAMING_SUBPROTOCOL } from '../../../src/contracts/wire.js';
import { compareEventIds } from '../../../src/contracts/event-ids.js';

type Frame = Record<string, unknown> & { type?: string };

interface Turn {
  readonly clientId: string;
  readonly text: string;
  readonly sentAt: number;
  /** Known once accepted (a replay may bring its answer's events before that). */
  seq?: number;
}

interface Answer {
  /** The text as a client builds it: deltas since the latest start. */
  text: string;
  /** Terminal events (done/stopped/error) received: exactly one is right. */
  terminals: number;
  endedAt?: number;
  failed?: string;
}

export interface ConversationReport {
  readonly sent: number;
  readonly answered: number;
  readonly errored: number;
  /** Accepted (or sent) but no answer by the end. */
  readonly lost: number;
  /** Turns with more than one terminal event, or events seen twice. */
  readonly duplicated: number;
  readonly outOfOrder: number;
  readonly wrongText: number;
  /** Milliseconds from sending to the answer's end, for every answered turn. */
  readonly latencies: number[];
}

export class Conversation {
  private readonly turns: Turn[] = [];
  private readonly answers = new Map<number, Answer>();
  private ws: WebSocket | undefined;
  private lastEventId = '0';
  private resumesPending = 0;
  private gatewayIndex: number;
  private closed = false;
  private seenIds = new Set<string>();
  private duplicateEvents = 0;
  private outOfOrder = 0;
  private lastTerminalSeq = 0;
  private waiter: (() => void) | undefined;
  private reconnects = 0;

  constructor(
    private readonly token: string,
    private readonly gateways: () => string[],
    firstGateway: number,
    private readonly expected: (seq: number, text: string) => string,
  ) {
    this.gatewayIndex = firstGateway;
  }

  get reconnections(): number {
    return this.reconnects;
  }

  async open(): Promise<void> {
    await this.connect();
  }

  /** Sends the message and waits (up to timeoutMs) for its answer; false if none came. */
  async ask(text: string, timeoutMs: number): Promise<boolean> {
    const turn: Turn = { clientId: `c${this.turns.length + 1}-${Math.random().toString(36).slice(2, 8)}`, text, sentAt: Date.now() };
    this.turns.push(turn);
    this.transmit(turn);
    const deadline = Date.now() + timeoutMs;
    while (this.answerOf(turn)?.endedAt === undefined && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(250, deadline - Date.now()));
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.answerOf(turn)?.endedAt !== undefined;
  }

  private answerOf(turn: Turn): Answer | undefined {
    return turn.seq === undefined ? undefined : this.answers.get(turn.seq);
  }

  close(): void {
    this.closed = true;
    this.ws?.terminate();
  }

  report(): ConversationReport {
    let answered = 0;
    let errored = 0;
    let lost = 0;
    let duplicated = this.duplicateEvents;
    let wrongText = 0;
    const latencies: number[] = [];
    for (const turn of this.turns) {
      const answer = this.answerOf(turn);
      if (answer?.endedAt === undefined) {
        lost += 1;
        continue;
      }
      latencies.push(answer.endedAt - turn.sentAt);
      if (answer.terminals > 1) duplicated += 1;
      if (answer.failed !== undefined) errored += 1;
      else {
        answered += 1;
        if (answer.text !== this.expected(turn.seq ?? 0, turn.text)) wrongText += 1;
      }
    }
    return { sent: this.turns.length, answered, errored, lost, duplicated, outOfOrder: this.outOfOrder, wrongText, latencies };
  }

  /** The wrong answers, for a failure message. */
  wrongAnswers(): string[] {
    return this.turns.flatMap((turn) => {
      const answer = this.answerOf(turn);
      const expected = this.expected(turn.seq ?? 0, turn.text);
      if (answer?.endedAt === undefined || answer.failed !== undefined || answer.text === expected) return [];
      return [`seq ${turn.seq}: got ${JSON.stringify(answer.text)}, expected ${JSON.stringify(expected)}`];
    });
  }

  private transmit(turn: Turn): void {
    if (this.ws?.readyState === WebSocket.OPEN && this.resumesPending === 0) {
      this.ws.send(JSON.stringify({ type: 'message', text: turn.text, clientId: turn.clientId }));
    }
  }

  private async connect(): Promise<void> {
    const urls = this.gateways();
    const url = `${(urls[this.gatewayIndex % urls.length] ?? '').replace(/^http/, 'ws')}/chat?token=${this.token}`;
    const ws = new WebSocket(url, [STREAMING_SUBPROTOCOL]);
    this.ws = ws;
    ws.on('message', (data) => this.onFrame(JSON.parse(String(data)) as Frame));
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.closed || this.ws !== ws) return;
      this.reconnects += 1;
      this.gatewayIndex += 1;
      const backoff = 50 + Math.random() * 200;
      setTimeout(() => void this.connect().catch(() => undefined), backoff);
    });
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'ready':
        this.resumesPending += 1;
        this.ws?.send(JSON.stringify({ type: 'resume', after: this.lastEventId }));
        return;
      case 'resumed':
        this.resumesPending -= 1;
        // Resend what was never accepted: the same clientId is stored once.
        if (this.resumesPending === 0) for (const turn of this.turns) if (turn.seq === undefined) this.transmit(turn);
        return;
      case 'accepted': {
        const turn = this.turns.find((candidate) => candidate.clientId === frame.clientId);
        if (turn !== undefined) turn.seq = Number(frame.seq);
        this.waiter?.();
        return;
      }
      case 'error':
        if (frame.eventId === undefined) return this.onRejected(frame);
        return this.onEvent(frame);
      default:
        if (typeof frame.eventId === 'string') this.onEvent(frame);
    }
  }

  private onRejected(frame: Frame): void {
    // A refused message (not an answer event) is sent again later; anything else is left alone.
    if (frame.code === 'invalid_event_id') this.ws?.close();
  }

  private onEvent(frame: Frame): void {
    if (this.resumesPending > 0) return;
    const eventId = String(frame.eventId);
    if (this.seenIds.has(eventId)) {
      this.duplicateEvents += 1;
      return;
    }
    if (compareEventIds(eventId, this.lastEventId) <= 0) {
      this.outOfOrder += 1;
      return;
    }
    this.seenIds.add(eventId);
    this.lastEventId = eventId;
    const seq = Number(frame.seq);
    let answer = this.answers.get(seq);
    if (answer === undefined) {
      answer = { text: '', terminals: 0 };
      this.answers.set(seq, answer);
    }
    if (frame.type === 'start') answer.text = '';
    else if (frame.type === 'delta') answer.text += String(frame.text);
    else {
      answer.terminals += 1;
      if (seq < this.lastTerminalSeq) this.outOfOrder += 1;
      this.lastTerminalSeq = Math.max(this.lastTerminalSeq, seq);
      if (frame.type === 'error') answer.failed = String(frame.code);
      answer.endedAt ??= Date.now();
      this.waiter?.();
    }
  }
}
