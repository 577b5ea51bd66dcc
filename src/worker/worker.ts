/**
 * A worker process: reads session nudges from the queue (consumer group), drains up to
 * `workerConcurrency` sessions at once, keeps its leases and queue entries alive while it works,
 * takes over the entries of dead workers, and on shutdown finishes or hands back what it holds.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.js';
import { ModelError } from '../contracts/errors.js';
import { globalKeys } from '../contracts/keys.js';
import type { ModelProvider } from '../providers/provider.js';
import { AnswerStore } from '../store/answer-store.js';
import { enqueue, forgetNote, QueueConsumer, unansweredBefore, type QueueEntry, type UnansweredNote } from '../store/queue.js';
import { connectRedis, createRedisClient, duplicateClient, type RedisClient } from '../store/redis.js';
import { tokenTag, type Logger } from '../shared/logger.js';
import { FailingProvider } from './failing-provider.js';
import { SessionDrain, type DrainEnd } from './session-drain.js';

export interface WorkerHandle {
  readonly consumer: string;
  /** Finishes current answers (up to SHUTDOWN_GRACE_MS), hands back the rest, disconnects. */
  stop(): Promise<void>;
}

const READ_BLOCK_MS = 1000;
const TRIM_INTERVAL_MS = 30_000;
/** Sessions the sweep looks at per round; the rest wait for the next round. */
const SWEEP_BATCH = 200;
/** Newest history records read per turn: 100 turns, more than a prompt window holds in practice. */
const HISTORY_RECORDS = 200;

interface ActiveDrain {
  readonly drain: SessionDrain;
  /** Queue entries this drain answers for, with the startTurn count when each was attached. */
  readonly entries: Array<{ id: string; startsBefore: number }>;
}

class Worker {
  private readonly active = new Map<string, ActiveDrain>();
  /** Drains that stopped taking entries and are acknowledging theirs. */
  private settling = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly consumerName = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly keys;
  private readonly queue: QueueConsumer;
  private readonly store: AnswerStore;
  private running = true;
  private slotFreed: (() => void) | undefined;
  private readLoopDone: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: Config,
    private readonly provider: ModelProvider,
    private readonly logger: Logger,
    private readonly redis: RedisClient,
    private readonly reader: RedisClient,
    private readonly subscriber: RedisClient,
  ) {
    this.keys = globalKeys(config.keyPrefix);
    this.queue = new QueueConsumer(redis, reader, this.keys.queue, this.keys.group, this.consumerName);
    this.store = new AnswerStore(redis, {
      prefix: config.keyPrefix,
      sessionTtlSeconds: config.sessionTtlSeconds,
      eventsMaxLen: config.eventsMaxLen,
      leaseMs: config.leaseMs,
      // Enough for any prompt window, and always past the turn being answered: after its question
      // come at most the questions queued behind it and the answers of the turns before it.
      historyRecords: Math.max(HISTORY_RECORDS, 4 * config.maxPendingPerSession),
    });
  }

  get consumer(): string {
    return this.consumerName;
  }

  async start(): Promise<void> {
    await this.queue.ensureGroup();
    await this.subscriber.subscribe(this.keys.cancelChannel, (message) => this.onCancel(message));
    this.every(Math.max(200, Math.floor(this.config.leaseMs / 3)), () => this.keepAlive());
    this.every(this.config.claimIntervalMs, () => this.claimAbandoned());
    this.every(this.config.claimIntervalMs, () => this.sweepAbandoned());
    // Also at once: a worker that lives less than one interval (a crash loop) still trims.
    await this.queue.trimAcknowledged();
    this.every(TRIM_INTERVAL_MS, () => this.queue.trimAcknowledged());
    this.readLoopDone = this.readLoop();
    this.logger.info({ consumer: this.consumerName, concurrency: this.config.workerConcurrency, model: this.provider.name }, 'worker ready');
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    this.slotFreed?.();
    this.reader.destroy();
    await this.readLoopDone;
    await this.waitForDrains(this.config.shutdownGraceMs);
    for (const { drain } of this.active.values()) drain.handBack();
    await this.waitForDrains(this.config.shutdownGraceMs + 5000);
    await this.subscriber.unsubscribe().catch(() => undefined);
    this.subscriber.destroy();
    this.redis.destroy();
    await this.provider.close();
    this.logger.info({ consumer: this.consumerName }, 'worker stopped');
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => {
      task().catch((error: unknown) => this.logger.warn({ err: error }, 'periodic worker task failed'));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private async readLoop(): Promise<void> {
    while (this.running) {
      const free = this.config.workerConcurrency - this.active.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      try {
        const entries = await this.queue.read(free, READ_BLOCK_MS);
        for (const entry of entries) this.dispatch(entry);
      } catch (error) {
        if (!this.running) return;
        this.logger.warn({ err: error }, 'reading the queue failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private dispatch(entry: QueueEntry): void {
    const current = this.active.get(entry.token);
    if (current !== undefined) {
      current.entries.push({ id: entry.id, startsBefore: current.drain.startsSent });
      return;
    }
    this.runDrain(entry).catch((error: unknown) => {
      // Entries stay pending: their idle time grows and another worker (or we) take them over.
      this.logger.error({ err: error, session: tokenTag(entry.token) }, 'session drain failed; its work will be retried');
    });
  }

  private async runDrain(entry: QueueEntry): Promise<void> {
    const drain = new SessionDrain(entry.token, {
      store: this.store,
      provider: this.provider,
      settings: {
        systemPrompt: this.config.model.systemPrompt,
        historyTokens: this.config.model.historyTokens,
        flushIntervalMs: this.config.flushIntervalMs,
        flushMaxChars: this.config.flushMaxChars,
      },
      logger: this.logger,
    });
    const active: ActiveDrain = { drain, entries: [{ id: entry.id, startsBefore: 0 }] };
    this.active.set(entry.token, active);
    // Once the drain has looked for work for the last time it must stop taking entries: one
    // attached while it settles would be acknowledged by nobody and wait for XAUTOCLAIM (15 s+).
    // From then on an entry for this session starts a new drain.
    let detached = false;
    const detach = () => {
      if (detached) return;
      detached = true;
      this.settling += 1;
      if (this.active.get(entry.token) === active) this.active.delete(entry.token);
    };
    try {
      // Sent together on one connection: Redis runs the lease request first, and the drain's first
      // startTurn answers "lost" when another worker holds the session (that worker will see this
      // message before it lets go). One round trip instead of two before the model is asked.
      void this.store.acquireLease(entry.token, drain.owner).catch(() => undefined);
      const end = await drain.run();
      detach();
      await this.settle(entry.token, active, end);
    } finally {
      if (detached) this.settling -= 1;
      else if (this.active.get(entry.token) === active) this.active.delete(entry.token);
      this.slotFreed?.();
      this.slotFreed = undefined;
    }
  }

  /**
   * Acknowledges what the drain covered and wakes a worker again for what it did not: an entry
   * that arrived after the drain's last look at the session (its last startTurn) may name a
   * message nobody has seen — whether that look found nothing left or another worker's lease.
   */
  private async settle(token: string, active: ActiveDrain, end: DrainEnd): Promise<void> {
    const uncovered = active.entries.some((attached) => attached.startsBefore >= active.drain.startsSent);
    if (end === 'handed-back') await this.store.releaseLease(token, active.drain.owner);
    if (end === 'lease-lost') {
      this.logger.warn({ session: tokenTag(token) }, 'lost the session lease during a turn (a stall longer than LEASE_MS); handing the turn back');
    }
    if (end === 'handed-back' || end === 'lease-lost' || (uncovered && end !== 'expired')) await enqueue(this.redis, this.keys.queue, token);
    await this.queue.ack(active.entries.map((attached) => attached.id));
  }

  private async keepAlive(): Promise<void> {
    const drains = [...this.active.values()];
    await Promise.all([
      ...drains.map(async ({ drain }) => {
        if (!(await this.store.renewLease(drain.token, drain.owner))) drain.loseLease();
      }),
      this.queue.heartbeat(drains.flatMap((active) => active.entries.map((attached) => attached.id))),
    ]);
  }

  private async claimAbandoned(): Promise<void> {
    const free = this.config.workerConcurrency - this.active.size;
    if (!this.running || free <= 0) return;
    const entries = await this.queue.claimAbandoned(this.config.claimIdleMs, free);
    if (entries.length > 0) this.logger.warn({ count: entries.length }, 'took over work of a worker that stopped responding');
    for (const entry of entries) this.dispatch(entry);
  }

  /**
   * Finds sessions with an unanswered turn that no worker owns and no wake-up will reach (a
   * wake-up lost in a failover or a crash, a hand-back that failed) and wakes a worker for them.
   * Only sessions noted longer ago than CLAIM_IDLE_MS, and whose wake-up the queue has already
   * handed out, are looked at: anything younger is still in line or being claimed.
   */
  private async sweepAbandoned(): Promise<void> {
    if (!this.running) return;
    const deliveredUpTo = await this.queue.deliveredUpTo();
    const olderThan = Math.min(Date.now() - this.config.claimIdleMs, deliveredUpTo);
    const notes = await unansweredBefore(this.redis, this.keys.unanswered, olderThan, SWEEP_BATCH);
    await Promise.all(notes.map((note) => this.sweepOne(note)));
  }

  private async sweepOne(note: UnansweredNote): Promise<void> {
    const standing = await this.store.inspect(note.token);
    if (standing === 'expired' || standing === 'answered') return forgetNote(this.redis, this.keys.unanswered, note);
    if (standing === 'owned') return;
    this.logger.warn({ session: tokenTag(note.token) }, 'found an unanswered turn that no worker owns; re-queued it');
    await enqueue(this.redis, this.keys.queue, note.token);
  }

  private onCancel(message: string): void {
    const [token = '', turn = ''] = message.split(' ');
    this.active.get(token)?.drain.cancel(Number(turn));
  }

  private async waitForDrains(limitMs: number): Promise<void> {
    const deadline = Date.now() + limitMs;
    while ((this.active.size > 0 || this.settling > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Prepares the model, connects to Redis and starts taking work. */
export async function startWorker(config: Config, provider: ModelProvider, logger: Logger): Promise<WorkerHandle> {
  const model = await prepareProvider(provider, logger);
  const redis = await connectRedis(createRedisClient(config.redis, logger), config.redis);
  const reader = await connectRedis(duplicateClient(redis, logger), config.redis);
  const subscriber = await connectRedis(duplicateClient(redis, logger), config.redis);
  const worker = new Worker(config, model, logger, redis, reader, subscriber);
  await worker.start();
  return { consumer: worker.consumer, stop: () => worker.stop() };
}

/** A model that cannot start still gets a worker: every message then gets that error, clearly. */
async function prepareProvider(provider: ModelProvider, logger: Logger): Promise<ModelProvider> {
  const started = Date.now();
  try {
    await provider.start();
    logger.info({ model: provider.name, loadMs: Date.now() - started }, 'language model ready');
    return provider;
  } catch (error) {
    const failure = error instanceof ModelError ? error : new ModelError('model_unavailable', `The language model could not start: ${String(error)}`);
    logger.error({ model: provider.name, code: failure.code }, failure.message);
    return new FailingProvider(provider.name, failure);
  }
}
