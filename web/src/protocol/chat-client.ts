/**
 * The streaming-protocol client: loads the session, keeps one socket open, reconnects with
 * backoff and jitter, resumes after the last event id, resends messages not yet accepted, and
 * exposes the conversation as immutable snapshots. Framework-free; every side effect (socket,
 * timers, randomness, HTTP) is injected so tests drive it deterministically.
 */
import { backoffDelay, type BackoffOptions } from '../../../src/contracts/backoff.js';
import {
  addLocalMessage,
  applyAccepted,
  applyBranch,
  applyBranchEvent,
  applyEvent,
  applyQueued,
  applyRejection,
  EMPTY_STATE,
  fillUnknownTexts,
  markStopRequested,
  replaceWithSession,
  stoppableTurn,
  switchTarget,
  type BranchIntent,
  type ChatState,
  type Turn,
} from './chat-state.js';
import { isAnswerEvent, parseServerFrame, type IncomingFrame } from './server-frames.js';
import type { SessionApi } from './session-api.js';
import { ErrorCodes } from '../../../src/contracts/errors.js';
import { CLOSE_UNAUTHENTICATED } from '../../../src/contracts/wire.js';
import type { ClientFrame, ErrorCode, OpenSocket, SessionView, SocketConnection, StoredEvent, Timers } from './types.js';

/** The browser's reconnects: from half a second up to 15 s apart. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

/** `degraded`: connected, but the server says it cannot reach its storage right now. */
export type ConnectionStatus = 'connecting' | 'online' | 'degraded' | 'reconnecting';
export type ClientPhase = 'loading' | 'ready' | 'expired';

export interface SessionInfo {
  readonly token: string;
  readonly name: string;
  readonly sessionStart: string;
  /** A person's conversation: its title. */
  readonly title?: string;
}

export interface ChatSnapshot {
  readonly phase: ClientPhase;
  readonly connection: ConnectionStatus;
  /** Connection attempts that failed since the last successful one. */
  readonly failures: number;
  readonly session: SessionInfo | undefined;
  readonly chat: ChatState;
}

export interface OutboxEntry {
  readonly clientId: string;
  readonly text: string;
  /** A new version of an earlier turn (edit, regenerate) rather than a new message. */
  readonly intent?: BranchIntent;
}

/** Keeps messages not yet accepted across a reload, so a reload loses nothing typed. */
export interface OutboxStore {
  load(token: string): readonly OutboxEntry[];
  save(token: string, entries: readonly OutboxEntry[]): void;
}

export interface ChatClientOptions {
  readonly token: string;
  readonly api: Pick<SessionApi, 'refresh'>;
  readonly openSocket: OpenSocket;
  readonly timers: Timers;
  /** Math.random in the browser; fixed in tests so jitter is predictable. */
  readonly random: () => number;
  readonly newClientId: () => string;
  /** A session the caller already holds (from POST /token): skips the first refresh. */
  readonly initialSession?: SessionView;
  readonly outbox?: OutboxStore;
  readonly backoff?: BackoffOptions;
  /** Silence after which the client pings; no frame within the timeout drops the socket. */
  readonly heartbeatMs?: number;
  readonly heartbeatTimeoutMs?: number;
}

const CLOSE_EXPIRED = CLOSE_UNAUTHENTICATED.code;
/** Codes of a rejected `message` frame; other frame-less errors do not concern a message. */
const MESSAGE_REJECTIONS: ReadonlySet<string> = new Set<ErrorCode>([
  ErrorCodes.emptyMessage,
  ErrorCodes.messageTooLong,
  ErrorCodes.tooManyPending,
  ErrorCodes.invalidFrame,
  ErrorCodes.unknownFrameType,
  ErrorCodes.binaryFrame,
]);
/** Delay before asking the history for the text of a turn sent from another tab. */
const FILL_DELAY_MS = 1_000;

export class ChatClient {
  private snapshot: ChatSnapshot;
  private readonly listeners = new Set<() => void>();
  private readonly token: string;
  private running = false;
  private loaded = false;
  private reloading = false;
  /** Bumped by start/dispose so async work begun before cannot touch the state after. */
  private generation = 0;
  private socket: SocketConnection | undefined;
  private ready = false;
  /**
   * Resume frames sent on this socket and not yet confirmed with `resumed`. Events that arrive
   * before the confirmation come from the old position and are sent again after it: dropped.
   */
  private resumesPending = 0;
  /** clientIds sent on the current socket and not yet accepted or rejected, in send order. */
  private inFlight: string[] = [];
  private retryTimer: unknown;
  private pingTimer: unknown;
  private deadlineTimer: unknown;
  private fillTimer: unknown;

  constructor(private readonly options: ChatClientOptions) {
    this.token = options.token;
    this.snapshot = { phase: 'loading', connection: 'connecting', failures: 0, session: undefined, chat: EMPTY_STATE };
    if (options.initialSession !== undefined) this.adoptSession(options.initialSession);
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  readonly getSnapshot = (): ChatSnapshot => this.snapshot;

  /** Starts loading and connecting; safe to call again after dispose (React remounts). */
  start(): void {
    if (this.running || this.snapshot.phase === 'expired') return;
    this.running = true;
    this.generation += 1;
    if (this.loaded) this.connect();
    else void this.load();
  }

  dispose(): void {
    this.running = false;
    this.generation += 1;
    this.clearTimers();
    this.dropSocket(1000, 'Client closed');
  }

  /** Queues a message; it goes out now if connected, else after the next reconnect. */
  send(text: string): boolean {
    return this.queue(text, undefined);
  }

  /** Sends `text` as a new version of turn `seq` (a sibling of it); the old one stays on its branch. */
  edit(seq: number, text: string): boolean {
    return this.queue(text, { kind: 'edit', of: seq });
  }

  /** Asks again: a new version of turn `seq` with the same text, answered anew. */
  regenerate(seq: number): boolean {
    const turn = this.snapshot.chat.turns.find((candidate) => candidate.seq === seq);
    if (turn === undefined || turn.textUnknown === true) return false;
    return this.queue(turn.text, { kind: 'regenerate', of: seq });
  }

  /** Shows the branch through turn `seq` (its newest turn); every window of the session follows. */
  switchTo(seq: number): boolean {
    if (!this.ready || !this.snapshot.chat.turns.some((turn) => turn.seq === seq)) return false;
    this.sendFrame({ type: 'switch', seq });
    this.setChat(applyBranch(this.snapshot.chat, switchTarget(this.snapshot.chat, seq)));
    return true;
  }

  private queue(text: string, intent: BranchIntent | undefined): boolean {
    if (text.trim() === '' || this.snapshot.phase === 'expired') return false;
    const clientId = this.options.newClientId();
    const chat = addLocalMessage(this.snapshot.chat, clientId, text, intent);
    if (chat === this.snapshot.chat) return false;
    this.setChat(chat);
    this.saveOutbox();
    const turn = chat.turns.at(-1);
    if (this.ready && turn !== undefined) this.transmit(turn);
    return true;
  }

  /** Stops the answer in progress (or the next one waiting); its partial text is kept. */
  stop(): boolean {
    const turn = stoppableTurn(this.snapshot.chat);
    if (turn?.seq === undefined || !this.ready) return false;
    this.sendFrame({ type: 'stop', seq: turn.seq });
    this.setChat(markStopRequested(this.snapshot.chat, turn.seq));
    return true;
  }

  /** Sends the text of a failed turn again as a new message. */
  retry(key: string): boolean {
    const turn = this.snapshot.chat.turns.find((candidate) => candidate.key === key);
    if (turn === undefined || turn.status !== 'error') return false;
    if (turn.rejected === true) {
      // The server never stored a rejected message: replace it instead of leaving a stale copy.
      this.setChat({ ...this.snapshot.chat, turns: this.snapshot.chat.turns.filter((candidate) => candidate !== turn) });
    }
    return this.queue(turn.text, turn.rejected === true ? turn.intent : undefined);
  }

  /** Skips the backoff wait (the browser came back online, or the user asked). */
  reconnectNow(): void {
    if (!this.running || this.socket !== undefined) return;
    this.options.timers.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.loaded) this.connect();
    else void this.load();
  }

  private async load(): Promise<void> {
    const generation = this.generation;
    this.setConnection(this.snapshot.failures > 0 ? 'reconnecting' : 'connecting');
    let result;
    try {
      result = await this.options.api.refresh(this.token);
    } catch {
      if (generation === this.generation) this.scheduleRetry();
      return;
    }
    if (generation !== this.generation) return;
    if (result.kind === 'expired') return this.expire();
    this.adoptSession(result.session);
    this.connect();
  }

  /** Takes a history snapshot as the truth, then adds messages still waiting in the outbox. */
  private adoptSession(session: SessionView): void {
    let chat = replaceWithSession(this.snapshot.chat, session);
    if (!this.loaded) {
      for (const entry of this.options.outbox?.load(this.token) ?? []) {
        if (!chat.turns.some((turn) => turn.clientId === entry.clientId)) chat = addLocalMessage(chat, entry.clientId, entry.text, entry.intent);
      }
    }
    this.loaded = true;
    const info: SessionInfo = { token: session.token, name: session.name, sessionStart: session.session_start };
    this.update({ phase: 'ready', session: session.title === undefined ? info : { ...info, title: session.title }, chat });
  }

  private connect(): void {
    this.dropSocket(1000, 'Reconnecting');
    this.setConnection(this.snapshot.failures > 0 ? 'reconnecting' : 'connecting');
    // Each socket gets its own handlers; events of a socket that was replaced are ignored.
    let socket: SocketConnection | undefined;
    const isCurrent = () => socket !== undefined && this.socket === socket;
    try {
      socket = this.options.openSocket(this.token, {
        onMessage: (data) => {
          if (isCurrent()) this.onFrame(data);
        },
        onClose: (code) => {
          if (isCurrent()) this.onClosed(code);
        },
      });
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    this.inFlight = [];
    this.resumesPending = 0;
    this.armDeadline();
  }

  private onFrame(data: unknown): void {
    const frame = parseServerFrame(data);
    if (frame === undefined) return;
    this.heard();
    if (isAnswerEvent(frame)) {
      // While a reset reload runs or a resume is unconfirmed, events are dropped: the resume
      // sends them again.
      if (!this.reloading && this.resumesPending === 0) this.applyAnswerEvent(frame);
      return;
    }
    this.onControlFrame(frame);
  }

  private onControlFrame(frame: Exclude<IncomingFrame, StoredEvent>): void {
    switch (frame.type) {
      case 'ready':
        this.onReady();
        return;
      case 'accepted':
        this.inFlight = this.inFlight.filter((clientId) => clientId !== frame.clientId);
        this.setChat(applyAccepted(this.snapshot.chat, frame));
        this.saveOutbox();
        return;
      case 'error':
        this.onRejected(frame.code, frame.message, 'clientId' in frame ? frame.clientId : undefined);
        return;
      case 'resumed':
        this.resumesPending = Math.max(0, this.resumesPending - 1);
        return;
      case 'status':
        this.update({ connection: frame.state === 'ok' ? 'online' : 'degraded' });
        return;
      case 'reset':
        void this.reload();
        return;
      case 'branch':
        // Like answer events: dropped while a reload or an unconfirmed resume will send it again.
        if (frame.eventId !== undefined && (this.reloading || this.resumesPending > 0)) return;
        this.onBranch(frame.head, frame.eventId);
        return;
      case 'queued':
        this.setChat(applyQueued(this.snapshot.chat, frame.seq, frame.etaMs === undefined ? { position: frame.position } : { position: frame.position, etaMs: frame.etaMs }));
        return;
      default:
        return;
    }
  }

  private onReady(): void {
    this.ready = true;
    this.update({ connection: 'online', failures: 0 });
    this.resume(this.snapshot.chat.lastEventId);
    // The same clientId is accepted once, so resending what may already be stored is safe.
    for (const turn of this.snapshot.chat.turns) {
      if (turn.status === 'sending') this.transmit(turn);
    }
  }

  /**
   * Another branch is shown. A head this client does not know in full (made in another window)
   * comes with a fresh history.
   */
  private onBranch(head: number, eventId: string | undefined): void {
    const before = this.snapshot.chat;
    this.setChat(applyBranchEvent(before, head, eventId));
    if (this.snapshot.chat === before) return;
    const known = head === 0 || this.snapshot.chat.turns.some((turn) => turn.seq === head && turn.textUnknown !== true);
    if (!known) void this.reload();
  }

  private resume(after: string): void {
    this.resumesPending += 1;
    this.sendFrame({ type: 'resume', after });
  }

  private applyAnswerEvent(frame: StoredEvent): void {
    this.setChat(applyEvent(this.snapshot.chat, frame));
    if (this.fillTimer === undefined && this.snapshot.chat.turns.some((turn) => turn.textUnknown === true)) {
      this.fillTimer = this.options.timers.setTimeout(() => void this.fillTexts(), FILL_DELAY_MS);
    }
  }

  /** A frame without seq was refused. The server handles frames in order, so it is the oldest. */
  private onRejected(code: ErrorCode, message: string, namedClientId: string | undefined): void {
    if (code === ErrorCodes.invalidEventId) {
      // The refused resume will not be confirmed.
      this.resumesPending = Math.max(0, this.resumesPending - 1);
      void this.reload();
      return;
    }
    // An edit or regenerate of a turn the server does not have names its clientId; a refused switch names none.
    const refusedVersion = code === ErrorCodes.unknownTurn && namedClientId !== undefined;
    if (!MESSAGE_REJECTIONS.has(code) && !refusedVersion) return;
    const clientId = namedClientId ?? this.inFlight[0];
    if (clientId === undefined) return;
    this.inFlight = this.inFlight.filter((candidate) => candidate !== clientId);
    this.setChat(applyRejection(this.snapshot.chat, clientId, { code, message }));
    this.saveOutbox();
  }

  /** The server no longer holds the events we asked for: start over from a fresh snapshot. */
  private async reload(): Promise<void> {
    if (this.reloading) return;
    this.reloading = true;
    const generation = this.generation;
    let result;
    try {
      result = await this.options.api.refresh(this.token);
    } catch {
      this.reloading = false;
      // Reconnecting resumes again; if the events are still gone, the next reset retries this.
      if (generation === this.generation) this.onClosed(1006);
      return;
    }
    this.reloading = false;
    if (generation !== this.generation) return;
    if (result.kind === 'expired') return this.expire();
    this.adoptSession(result.session);
    this.saveOutbox();
    if (this.ready) this.resume(result.session.last_event_id);
  }

  private async fillTexts(): Promise<void> {
    const generation = this.generation;
    try {
      const result = await this.options.api.refresh(this.token);
      if (generation === this.generation && result.kind === 'ok') this.setChat(fillUnknownTexts(this.snapshot.chat, result.session));
    } catch {
      // Cosmetic only: the turn keeps its placeholder text.
    } finally {
      this.fillTimer = undefined;
    }
  }

  private onClosed(code: number): void {
    this.dropSocket(4000, 'Closed');
    if (!this.running) return;
    if (code === CLOSE_EXPIRED) return this.expire();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    this.options.timers.clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.snapshot.failures, this.options.random, this.options.backoff ?? DEFAULT_BACKOFF);
    this.update({ connection: 'reconnecting', failures: this.snapshot.failures + 1 });
    this.retryTimer = this.options.timers.setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.running) return;
      if (this.loaded) this.connect();
      else void this.load();
    }, delay);
  }

  private expire(): void {
    this.running = false;
    this.clearTimers();
    this.dropSocket(1000, 'Session expired');
    this.options.outbox?.save(this.token, []);
    this.update({ phase: 'expired' });
  }

  /** Any frame proves the connection alive: wait a full interval before the next ping. */
  private heard(): void {
    const { timers } = this.options;
    timers.clearTimeout(this.deadlineTimer);
    timers.clearTimeout(this.pingTimer);
    this.deadlineTimer = undefined;
    this.pingTimer = timers.setTimeout(() => {
      this.sendFrame({ type: 'ping' });
      this.armDeadline();
    }, this.options.heartbeatMs ?? 25_000);
  }

  /** A socket that says nothing (no ready, no pong) is dead even if no close event came yet. */
  private armDeadline(): void {
    this.options.timers.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = this.options.timers.setTimeout(() => {
      this.deadlineTimer = undefined;
      if (this.socket !== undefined) this.onClosed(1006);
    }, this.options.heartbeatTimeoutMs ?? 10_000);
  }

  private transmit(turn: Turn): void {
    const { clientId, text, intent } = turn;
    if (clientId === undefined) return;
    this.inFlight.push(clientId);
    if (intent === undefined) this.sendFrame({ type: 'message', text, clientId });
    else if (intent.kind === 'edit') this.sendFrame({ type: 'edit', seq: intent.of, text, clientId });
    else this.sendFrame({ type: 'regenerate', seq: intent.of, clientId });
  }

  private sendFrame(frame: ClientFrame): void {
    try {
      this.socket?.send(JSON.stringify(frame));
    } catch {
      // A socket that cannot send is closing; its close event triggers the reconnect.
    }
  }

  private dropSocket(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = undefined;
    this.ready = false;
    this.inFlight = [];
    const { timers } = this.options;
    timers.clearTimeout(this.pingTimer);
    timers.clearTimeout(this.deadlineTimer);
    this.pingTimer = undefined;
    this.deadlineTimer = undefined;
    try {
      socket?.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  private clearTimers(): void {
    const { timers } = this.options;
    for (const timer of [this.retryTimer, this.pingTimer, this.deadlineTimer, this.fillTimer]) timers.clearTimeout(timer);
    this.retryTimer = this.pingTimer = this.deadlineTimer = this.fillTimer = undefined;
  }

  private saveOutbox(): void {
    const entries = this.snapshot.chat.turns
      .filter((turn) => turn.status === 'sending' && turn.clientId !== undefined)
      .map((turn) => ({ clientId: turn.clientId ?? '', text: turn.text, ...(turn.intent === undefined ? {} : { intent: turn.intent }) }));
    this.options.outbox?.save(this.token, entries);
  }

  private setConnection(connection: ConnectionStatus): void {
    if (this.snapshot.connection !== connection) this.update({ connection });
  }

  private setChat(chat: ChatState): void {
    if (chat !== this.snapshot.chat) this.update({ chat });
  }

  private update(change: Partial<ChatSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    for (const listener of this.listeners) listener();
  }
}
