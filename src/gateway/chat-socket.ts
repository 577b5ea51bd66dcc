/**
 * One WebSocket connection to /chat. Plain mode (a text frame is a message; one JSON frame per
 * finished answer; see docs/protocol.md, "Compatibility"); streaming mode (subprotocol parley.v1) speaks
 * JSON frames both ways and forwards every answer event with its id. See docs/protocol.md.
 */
import type { WebSocket, RawData } from 'ws';
import { z } from 'zod';
import { ErrorCodes, ParleyError, type ErrorCode } from '../contracts/errors.js';
import { randomUUID } from 'node:crypto';
import { clientFrameSchema, parentOf, type ClientFrame, type ServerFrame, type ServiceState, type StoredSessionEvent } from '../contracts/protocol.js';
import type { LiveEvent } from '../contracts/records.js';
import { CLIENT_FRAME_TYPES, CLOSE_TOO_MANY_SOCKETS, CLOSE_UNAUTHENTICATED, STREAMING_SUBPROTOCOL } from '../contracts/wire.js';
import { sessionPartition, type QueuePartition } from '../contracts/keys.js';
import { enqueue } from '../store/queue.js';
import type { WakeUpRedis } from '../store/queue.js';
import { compareEventIds } from '../contracts/event-ids.js';
import type { ConversationStore } from '../store/conversation-store.js';
import type { BranchTarget, SessionState, SessionStore, Viewer } from '../store/session-store.js';
import { SOCKET_REFRESH_MS, type SocketRegistry } from '../store/socket-registry.js';
import { safeError, tokenTag, type Logger } from '../shared/logger.js';
import { EventCursor } from './event-cursor.js';
import { LONE_SURROGATE } from './http-routes.js';
import type { AccountStore } from '../store/account-store.js';
import type { Identity, Person, ResolvedPerson } from './auth/identity.js';
import type { GatewayLimits, Limit } from './limits.js';
import type { LiveHub, LiveListener } from './live-hub.js';
import type { QueueView } from './queue-view.js';
import type { RedisHealth } from './redis-health.js';
import type { GatewayMetrics } from './metrics.js';

export interface ChatDependencies {
  readonly store: SessionStore;
  /** People's conversation lists: a new message moves its conversation to the top. */
  readonly conversations: ConversationStore;
  readonly redis: WakeUpRedis;
  readonly hub: LiveHub;
  /** The work queue's partitions; a session always uses the one partitionOf names. */
  readonly partitions: readonly QueuePartition[];
  readonly messageMaxChars: number;
  /** True on a single Redis node, where commands on one connection run in the order sent. */
  readonly pipelineWakeUp: boolean;
  readonly health: RedisHealth;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly limits: GatewayLimits;
  readonly sockets: SocketRegistry;
  readonly queueView: QueueView;
  /** A new message whose estimated wait is longer is refused with "busy"; 0 = never. */
  readonly maxQueueWaitMs: number;
  /** Recognises the person of an upgrade request (cookie or account token). */
  readonly identity: Identity;
  /** Re-checks a signed-in socket's auth session before each message (sign-out, disabled account). */
  readonly accounts: AccountStore;
  /** ANONYMOUS_CHAT: false closes sockets without a person (1008). */
  readonly anonymous: boolean;
}

/** How often a streaming socket with messages waiting for a worker is told its place in line. */
const QUEUE_UPDATE_MS = 1000;

/** A client that cannot keep up gets disconnected; it resumes from its last event id. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const EARLY_EVENTS_KEPT = 1000;
const CLOSE_TOO_SLOW = { code: 1013, reason: 'Client too slow, reconnect and resume' } as const;
/**
 * Inbound backpressure: frames are handled one at a time, so a client sending faster than that
 * would pile them up in memory. Past PAUSE_AT unprocessed frames (or bytes) the socket stops
 * reading (TCP then slows the sender); it reads again once the backlog is down to RESUME_AT.
 */
const PAUSE_AT_FRAMES = 16;
const PAUSE_AT_BYTES = 256 * 1024;
const RESUME_AT_FRAMES = 4;

class FrameError extends ParleyError {
  constructor(
    code: ErrorCode,
    message: string,
    /** The rejected message's clientId, echoed so the client knows which one it was. */
    readonly clientId?: string,
    /** For rate_limited: when the client may try again. */
    readonly retryAfterMs?: number,
  ) {
    super(code, message);
  }
}

type Mode = 'plain' | 'streaming';

export class ChatConnection implements LiveListener {
  private readonly mode: Mode;
  private cursor: EventCursor | undefined;
  private inbound: Promise<void>;
  /** Plain mode: text of answers seen from their start, so a finished answer needs no read. */
  private readonly plainAnswers = new Map<number, string>();
  private closed = false;
  private unprocessedFrames = 0;
  private unprocessedBytes = 0;
  /**
   * Live events that arrived before the cursor existed (pub/sub and the position read travel on
   * different connections, so an event published after the read may be handed over first).
   */
  private earlyEvents: LiveEvent[] = [];
  private readonly partition: QueuePartition;
  private readonly socketId = randomUUID();
  private readonly resumes: Limit;
  private readonly switches: Limit;
  /** The account owning the session (a person's conversation), known once set up. */
  private owner: string | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  /** Streaming mode: turns this socket sent that have no outcome yet, and the last place reported. */
  private readonly waiting = new Set<number>();
  private queueTimer: NodeJS.Timeout | undefined;
  private reportedPosition: number | undefined;
  /** The signed-in person of the upgrade request (cookie or token), null for an anonymous socket. */
  readonly person: Person | null;
  /** Who asks, for the owner check of a person's conversation. */
  private readonly viewer: Viewer;

  constructor(
    private readonly ws: WebSocket,
    private readonly token: string,
    /** The client's address (X-Forwarded-For behind a trusted proxy), for per-address limits. */
    private readonly address: string,
    private readonly deps: ChatDependencies,
    /** The signed-in person on the upgrade request, if any: only the owner may open a conversation. */
    private readonly auth: ResolvedPerson | null = null,
  ) {
    this.person = auth?.person ?? null;
    this.viewer = this.person?.id ?? null;
    this.resumes = deps.limits.resumes();
    this.switches = deps.limits.switches();
    this.mode = ws.protocol === STREAMING_SUBPROTOCOL ? 'streaming' : 'plain';
    this.partition = sessionPartition(deps.partitions, token);
    ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    ws.on('close', () => void this.onClose());
    ws.on('error', (error) => deps.logger.debug({ err: error, session: tokenTag(token) }, 'socket error'));
    deps.metrics.sockets.inc({ mode: this.mode });
    if (deps.health.state !== 'ok') this.onServiceState(deps.health.state);
    this.inbound = this.setUp().catch((error: unknown) => this.fail(error));
  }

  onLive(event: LiveEvent): void {
    if (this.cursor !== undefined) this.cursor.offer(event);
    // Past the bound the cursor reads them from the stream instead: any gap is filled from there.
    else if (this.earlyEvents.length < EARLY_EVENTS_KEPT) this.earlyEvents.push(event);
  }

  /**
   * Redis connections came back (a restart, a Cluster failover): events may have been missed, and
   * so may the last writes, a wake-up among them. A turn left with no worker is queued again.
   */
  onResync(): void {
    this.cursor?.catchUp();
    this.deps.store
      .touch(this.token, this.viewer)
      .then((state) => (state === null ? undefined : this.wakeIfAbandoned(state)))
      .catch((error: unknown) => this.deps.logger.warn({ err: safeError(error), session: tokenTag(this.token) }, 'checking the session after a reconnect failed'));
  }

  /** Unanswered messages and no worker on them (a wake-up lost with a process or a failover): queue one. */
  private async wakeIfAbandoned(state: SessionState): Promise<void> {
    if (state.seq > state.answered && !state.leaseHeld) await enqueue(this.deps.redis, this.partition.queue, this.token);
  }

  /** Plain mode has no frame for it: every plain frame is drawn as a chat message. */
  onServiceState(state: ServiceState): void {
    if (this.mode !== 'streaming') return;
    const message = state === 'ok' ? 'The service is available again.' : 'The service cannot reach its storage right now; messages and answers wait until it can.';
    this.send({ type: 'status', state, message });
  }

  onExpired(): void {
    this.ws.close(CLOSE_UNAUTHENTICATED.code, CLOSE_UNAUTHENTICATED.reason);
  }

  /** Take a place among the session's sockets, subscribe, then read where the session stands. */
  private async setUp(): Promise<void> {
    const { hub, store, sockets } = this.deps;
    if (!(await sockets.join(this.token, this.socketId))) {
      this.ws.close(CLOSE_TOO_MANY_SOCKETS.code, CLOSE_TOO_MANY_SOCKETS.reason);
      return;
    }
    this.renewTimer = setInterval(() => void sockets.renew(this.token, this.socketId).catch(() => undefined), SOCKET_REFRESH_MS);
    this.renewTimer.unref();
    // Subscribe first, then read the state: no event can fall in between.
    await hub.add(this.token, this);
    // Someone else's conversation is closed exactly like an unknown token: it does not exist for them.
    const state = await store.touch(this.token, this.viewer);
    if (state === null) {
      this.onExpired();
      return;
    }
    this.owner = state.owner;
    // Before the cursor exists, so before any event: the client takes `ready` as the point after
    // which it gets every event, and anything sent ahead of it would fall outside that promise.
    if (this.mode === 'streaming') {
      this.send({ type: 'ready', token: this.token, lastEventId: state.lastEventId, protocol: STREAMING_SUBPROTOCOL });
    }
    this.cursor = new EventCursor(state.lastEventId, (after) => store.eventsAfter(this.token, after), {
      deliver: (event) => this.deliver(event),
      reset: () => this.send({ type: 'reset', reason: 'Some events are no longer retained: reload the history and resume after its last_event_id.' }),
      failed: (error) => this.fail(error),
    });
    for (const event of this.earlyEvents) this.cursor.offer(event);
    if (this.earlyEvents.length >= EARLY_EVENTS_KEPT) this.cursor.catchUp();
    this.earlyEvents = [];
    await this.wakeIfAbandoned(state);
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    const bytes = frameBytes(data);
    this.unprocessedFrames += 1;
    this.unprocessedBytes += bytes;
    if (!this.ws.isPaused && (this.unprocessedFrames >= PAUSE_AT_FRAMES || this.unprocessedBytes >= PAUSE_AT_BYTES)) {
      this.ws.pause();
      this.deps.metrics.pauses.inc();
    }
    this.inbound = this.inbound
      .then(() => (this.cursor === undefined ? undefined : this.handle(data, isBinary)))
      .catch((error: unknown) => {
        if (error instanceof FrameError) this.reject(error.code, error.message, error.clientId, error.retryAfterMs);
        else this.fail(error);
      })
      .finally(() => {
        this.unprocessedFrames -= 1;
        this.unprocessedBytes -= bytes;
        if (this.ws.isPaused && this.unprocessedFrames <= RESUME_AT_FRAMES && this.unprocessedBytes < PAUSE_AT_BYTES) this.ws.resume();
      });
  }

  private async handle(data: RawData, isBinary: boolean): Promise<void> {
    if (isBinary) throw new FrameError(ErrorCodes.binaryFrame, 'Binary frames are not accepted: send text.');
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8');
    if (this.mode === 'plain') return this.sendMessage(text);
    const frame = parseClientFrame(text);
    switch (frame.type) {
      case 'message':
        return this.sendMessage(frame.text, frame.clientId);
      case 'stop':
        await this.deps.store.requestStop(this.token, this.partition.cancelChannel, frame.seq);
        return;
      case 'resume':
        // Each resume replays events: a client may not make the gateway replay without end.
        await this.limited(this.resumes, 'socket', 'Too many resume requests');
        // Awaited, so a later frame's reply cannot overtake this one's.
        await this.cursor?.resume(frame.after, () => this.confirmResume(frame.after));
        return;
      case 'ping':
        this.send({ type: 'pong' });
        return;
      case 'edit':
        return this.sendMessage(frame.text, frame.clientId, { kind: 'edit', seq: frame.seq });
      case 'regenerate':
        return this.sendMessage('', frame.clientId, { kind: 'regenerate', seq: frame.seq });
      case 'switch':
        return this.switchBranch(frame.seq);
    }
  }

  /** The branch event reaches every socket of the session (this one included) through the stream. */
  private async switchBranch(seq: number): Promise<void> {
    await this.limited(this.switches, 'socket', 'Too many branch switches');
    const result = await this.deps.store.switchBranch(this.token, seq);
    if (result.status === 'expired') return this.onExpired();
    if (result.status === 'unknown_turn') throw new FrameError(ErrorCodes.unknownTurn, `This conversation has no message ${seq} to switch to.`);
  }

  /**
   * Runs in the cursor's turn, so no event is sent between this check and the replay: the client
   * takes the `resumed` frame as the point after which it gets exactly the events after its id.
   */
  private async confirmResume(after: string): Promise<boolean> {
    const state = await this.deps.store.touch(this.token, this.viewer);
    if (state === null) {
      this.onExpired();
      return false;
    }
    // An id newer than the session's newest event was never sent by this session (another
    // session's id, a made-up one): resuming after it would silently skip every future event.
    if (compareEventIds(after, state.lastEventId) > 0) {
      this.reject(ErrorCodes.invalidEventId, 'This session has no event with that id: resume after an id it sent you, or "0".');
      return false;
    }
    this.send({ type: 'resumed', after });
    return true;
  }

  /**
   * A new turn: after the head, or with `target` beside an earlier one (edit, regenerate; the
   * regenerated turn's text is taken from storage, `text` is not used).
   */
  private async sendMessage(text: string, clientId?: string, target?: BranchTarget): Promise<void> {
    if (target?.kind !== 'regenerate') this.checkText(text, clientId);
    const { store, pipelineWakeUp, limits } = this.deps;
    if (this.auth !== null) {
      // Signed out (here or everywhere) or disabled since the socket opened: it ends with its session.
      if ((await this.deps.accounts.lookup(this.auth.person.id, this.auth.authSessionId)) === null) return this.onExpired();
      await this.limited(limits.accountMessages, this.auth.person.id, 'Too many messages from your account', clientId);
    }
    await this.limited(limits.sessionMessages, this.token, 'Too many messages in this conversation', clientId);
    await this.limited(limits.messages, this.address, 'Too many messages from your address', clientId);
    await this.admit(clientId);
    // An edit or regenerate replaces the answer being written: stop it first, so the model turns
    // to the new turn instead of finishing one the person no longer wants.
    if (target !== undefined) await store.requestStop(this.token, this.partition.cancelChannel);
    const { queue: queueKey, unanswered: unansweredKey } = this.partition;
    const result = await store.accept(this.token, text, clientId, { queueKey, unansweredKey, inScript: pipelineWakeUp }, this.address, target);
    if (result.status === 'expired') return this.onExpired();
    if (result.status === 'busy') {
      throw new FrameError(ErrorCodes.tooManyPending, 'Too many messages are waiting for an answer; wait for one to finish.', clientId);
    }
    if (result.status === 'unknown_turn') {
      throw new FrameError(ErrorCodes.unknownTurn, `This conversation has no message ${target?.seq ?? ''} to ${target?.kind ?? 'edit'}.`, clientId);
    }
    if (result.status === 'accepted') {
      this.deps.metrics.messages.inc();
      if (this.owner !== undefined) await this.deps.conversations.noteMessage(this.owner, this.token, result.record);
    }
    if (this.mode === 'streaming') {
      const { id, seq, timestamp } = result.record;
      this.send({ type: 'accepted', id, seq, parent: parentOf(result.record), timestamp, ...(clientId === undefined ? {} : { clientId }) });
      this.waiting.add(seq);
      this.watchQueue();
    }
  }

  private checkText(text: string, clientId: string | undefined): void {
    if (text.trim() === '') throw new FrameError(ErrorCodes.emptyMessage, 'The message is empty.', clientId);
    // Characters are code points, as for names: an emoji counts once, not as two UTF-16 units.
    if (text.length > this.deps.messageMaxChars && [...text].length > this.deps.messageMaxChars) {
      throw new FrameError(ErrorCodes.messageTooLong, `The message is longer than ${this.deps.messageMaxChars} characters.`, clientId);
    }
    // Only reachable through a JSON escape ("\ud800"): stored, it would come back as U+FFFD.
    if (LONE_SURROGATE.test(text)) throw new FrameError(ErrorCodes.invalidFrame, 'The message text is not valid Unicode (a lone surrogate).');
  }

  /** Admission control: refuses at once, with "busy", a message that would wait too long. */
  private async admit(clientId: string | undefined): Promise<void> {
    const { maxQueueWaitMs, queueView } = this.deps;
    if (maxQueueWaitMs === 0) return;
    // Without a view of the queue (Redis trouble) the message is stored as before.
    const snapshot = await queueView.snapshot().catch(() => undefined);
    if (snapshot === undefined) return;
    // With nobody waiting a slot may well be free: only sessions ahead make a wait we can estimate.
    const ahead = snapshot.positions.size - (snapshot.positions.has(this.token) ? 1 : 0);
    const waitMs = ahead === 0 ? 0 : snapshot.estimateMs(ahead);
    if (waitMs === undefined || waitMs <= maxQueueWaitMs) return;
    const retryAfterMs = waitMs - maxQueueWaitMs;
    throw new FrameError(ErrorCodes.busy, `The assistant is busy (about ${Math.ceil(waitMs / 1000)} s of waiting): try again in ${Math.ceil(retryAfterMs / 1000)} s.`, clientId, retryAfterMs);
  }

  /** While this socket's messages wait for a worker, tells it their place in line when it changes. */
  private watchQueue(): void {
    if (this.queueTimer !== undefined) return;
    const update = () => {
      if (this.closed || this.waiting.size === 0) {
        clearInterval(this.queueTimer);
        this.queueTimer = undefined;
        this.reportedPosition = undefined;
        return;
      }
      void this.reportPosition().catch(() => undefined);
    };
    this.queueTimer = setInterval(update, QUEUE_UPDATE_MS);
    this.queueTimer.unref();
    update();
  }

  private async reportPosition(): Promise<void> {
    const snapshot = await this.deps.queueView.snapshot();
    const position = snapshot.positions.get(this.token);
    if (position === this.reportedPosition) return;
    this.reportedPosition = position;
    if (position === undefined || this.waiting.size === 0) return;
    const etaMs = snapshot.estimateMs(position);
    this.send({ type: 'queued', seq: Math.min(...this.waiting), position, ...(etaMs === undefined ? {} : { etaMs }) });
  }

  private async deliver(event: StoredSessionEvent): Promise<void> {
    if (event.type === 'done' || event.type === 'stopped' || event.type === 'error') this.waiting.delete(event.seq);
    if (this.mode === 'streaming') {
      this.send(event);
      return;
    }
    // Plain mode has no frame for a branch change: its next message simply follows the new head.
    if (event.type === 'branch') return;
    if (event.type === 'start') this.plainAnswers.set(event.seq, '');
    else if (event.type === 'delta') {
      const sofar = this.plainAnswers.get(event.seq);
      if (sofar !== undefined) this.plainAnswers.set(event.seq, sofar + event.text);
    } else if (event.type === 'error') {
      this.plainAnswers.delete(event.seq);
      // `msg` too: plain-mode clients render the `msg` of whatever frame arrives (docs/protocol.md, "Compatibility").
      const ref = event.ref === undefined ? {} : { ref: event.ref };
      this.sendJson({ type: 'error', code: event.code, message: event.message, msg: event.message, seq: event.seq, ...ref });
    } else {
      const seen = this.plainAnswers.get(event.seq);
      this.plainAnswers.delete(event.seq);
      const msg = seen ?? (await this.deps.store.findMessage(this.token, event.id))?.msg ?? '';
      this.sendJson({ id: event.id, msg, timestamp: event.timestamp, source: 'bot' });
    }
  }

  /** Throws a rate_limited FrameError when `limit` refuses `key`. */
  private async limited(limit: Limit, key: string, what: string, clientId?: string): Promise<void> {
    const waitMs = await limit.take(key);
    if (waitMs === null) return;
    throw new FrameError(ErrorCodes.rateLimited, `${what}: try again in ${Math.ceil(waitMs / 1000)} s.`, clientId, waitMs);
  }

  private reject(code: ErrorCode, message: string, clientId?: string, retryAfterMs?: number): void {
    this.deps.metrics.rejected.inc({ code });
    const frame: ServerFrame = {
      type: 'error',
      code,
      message,
      ...(clientId === undefined ? {} : { clientId }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
    // Plain-mode clients render `msg` of whatever arrives.
    this.sendJson(this.mode === 'plain' ? { ...frame, msg: message } : frame);
  }

  private fail(error: unknown): void {
    this.deps.logger.error({ err: error, session: tokenTag(this.token) }, 'chat connection failed');
    const message = 'Something went wrong on the server; reconnect to continue.';
    this.sendJson({ type: 'error', code: ErrorCodes.internal, message, ...(this.mode === 'plain' ? { msg: message } : {}) });
    this.ws.close(1011, 'Internal error, reconnect');
  }

  private send(frame: ServerFrame): void {
    this.sendJson(frame);
  }

  private sendJson(frame: object): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.ws.close(CLOSE_TOO_SLOW.code, CLOSE_TOO_SLOW.reason);
      return;
    }
    this.ws.send(JSON.stringify(frame));
  }

  private async onClose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewTimer);
    clearInterval(this.queueTimer);
    this.deps.metrics.sockets.dec({ mode: this.mode });
    await this.deps.sockets.leave(this.token, this.socketId).catch(() => undefined);
    await this.deps.hub.remove(this.token, this).catch((error: unknown) => this.deps.logger.warn({ err: error }, 'unsubscribe failed'));
  }
}

function frameBytes(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, part) => sum + part.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

const frameTypeSchema = z.object({ type: z.string() });

/** Parses a streaming-mode frame; throws FrameError with a message that says what is wrong. */
export function parseClientFrame(text: string): ClientFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FrameError(ErrorCodes.invalidFrame, 'The frame is not valid JSON.');
  }
  const typed = frameTypeSchema.safeParse(json);
  if (!typed.success) throw new FrameError(ErrorCodes.invalidFrame, 'The frame must be a JSON object with a "type".');
  if (!(CLIENT_FRAME_TYPES as readonly string[]).includes(typed.data.type)) {
    throw new FrameError(ErrorCodes.unknownFrameType, `Unknown frame type; expected one of ${CLIENT_FRAME_TYPES.join(', ')}.`);
  }
  const parsed = clientFrameSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
    const code = typed.data.type === 'resume' ? ErrorCodes.invalidEventId : ErrorCodes.invalidFrame;
    throw new FrameError(code, `Invalid "${typed.data.type}" frame: ${where}${issue?.message ?? 'malformed'}.`);
  }
  return parsed.data;
}
