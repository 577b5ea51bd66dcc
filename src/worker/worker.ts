/**
 * A worker process: reads session nudges from the queue (consumer group), drains up to
 * `workerConcurrency` sessions at once, keeps its leases and queue entries alive while it works,
 * takes over the entries of dead workers, and on shutdown finishes or hands back what it holds.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.js';
import { ModelError } from '../contracts/errors.js';
import { globalKeys, queuePartitions, sessionPartition, type QueuePartition } from '../contracts/keys.js';
import type { ModelProvider } from '../providers/provider.js';
import { UnavailableProvider } from '../providers/unavailable.js';
import { AddressSlots } from '../store/address-slots.js';
import { AnswerStore } from '../store/answer-store.js';
import { subscribe, unsubscribe, type ChannelListener } from '../store/pubsub.js';
import { enqueue, forgetNote, PartitionedQueue, sweepUnanswered, type PartitionEntry, type UnansweredNote } from '../store/queue.js';
import { connectRedis, createRedisClient, duplicateClient, type RedisConnection } from '../store/redis.js';
import { tokenTag, type Logger } from '../shared/logger.js';
import { redisProblems, startMetricsServer } from '../shared/metrics-server.js';
import { CAPACITY_REPORT_MS, CapacityReporter } from './capacity.js';
import { WorkerMetrics } from './metrics.js';
import { SessionDrain, type DrainEnd } from './session-drain.js';

export interface WorkerHandle {
  readonly consumer: string;
  /** The private metrics listener (WORKER_METRICS_PORT), when there is one. */
  readonly metricsUrl: string | undefined;
  /** Finishes current answers (up to SHUTDOWN_GRACE_MS), hands back the rest, disconnects. */
  stop(): Promise<void>;
}

const READ_BLOCK_MS = 1000;
/** How long an entry whose address is at its cap waits before going to the back of the queue. */
const ADDRESS_BUSY_RETRY_MS = 200;
const TRIM_INTERVAL_MS = 30_000;
/** Sessions the sweep looks at a time (a round visits them all, a batch after another). */
const SWEEP_BATCH = 200;
/** Newest history records read per turn: 100 turns, more than a prompt window holds in practice. */
const HISTORY_RECORDS = 200;

interface ActiveDrain {
  readonly drain: SessionDrain;
  /** Queue entries this drain answers for, with the startTurn count when each was attached. */
  readonly entries: Array<{ entry: PartitionEntry; startsBefore: number }>;
}

class Worker {
  /** The check of the queue in progress: drains finishing together share one instead of each sending their own. */
  private unreadCheck: Promise<boolean> | undefined;
  private readonly active = new Map<string, ActiveDrain>();
  /** Drains that stopped taking entries and are acknowledging theirs. */
  private settling = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly consumerName = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly keys;
  private readonly partitions: readonly QueuePartition[];
  private readonly queue: PartitionedQueue;
  private readonly store: AnswerStore;
  /**
   * Entries of new sessions read while every slot was taken: each partition's read asks for its
   * share of the free slots (rounded up), so together they may bring a few more. They start as
   * slots free up, and are renewed like the entries of running drains meanwhile.
   */
  private readonly waiting: PartitionEntry[] = [];
  private readonly addressSlots: AddressSlots;
  private readonly capacity: CapacityReporter;
  private running = true;
  private slotWaiters: Array<() => void> = [];
  private sweeping = false;
  private readLoopsDone: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: Config,
    private readonly provider: ModelProvider,
    private readonly logger: Logger,
    private readonly redis: RedisConnection,
    private readonly readers: readonly RedisConnection[],
    private readonly subscriber: RedisConnection,
    private readonly metrics: WorkerMetrics,
  ) {
    this.keys = globalKeys(config.keyPrefix);
    this.partitions = queuePartitions(config.keyPrefix, config.queuePartitions);
    this.queue = new PartitionedQueue(redis, readers, this.partitions, this.keys.group, this.consumerName);
    this.store = new AnswerStore(redis, {
      prefix: config.keyPrefix,
      shardedPubSub: config.redis.cluster,
      sessionTtlSeconds: config.sessionTtlSeconds,
      eventsMaxLen: config.eventsMaxLen,
      leaseMs: config.leaseMs,
      // Enough for any prompt window, and always past the turn being answered: after its question
      // come at most the questions queued behind it and the answers of the turns before it.
      historyRecords: Math.max(HISTORY_RECORDS, 4 * config.maxPendingPerSession),
    });
    this.capacity = new CapacityReporter(redis, this.keys.capacity, this.consumerName, config.workerConcurrency);
    // A place is held at most as long as an answer may take (plus its retries' slack).
    this.addressSlots = new AddressSlots(redis, { prefix: config.keyPrefix, cap: config.maxActivePerAddress, holdMs: 2 * config.model.totalTimeoutMs });
  }

  get consumer(): string {
    return this.consumerName;
  }

  async start(): Promise<void> {
    await this.queue.ensureGroups();
    await Promise.all(
      this.partitions.map((partition) => subscribe(this.subscriber, partition.cancelChannel, this.onCancel, this.config.redis.cluster)),
    );
    this.every(Math.max(200, Math.floor(this.config.leaseMs / 3)), () => this.keepAlive());
    this.every(this.config.claimIntervalMs, () => this.claimAbandoned());
    this.every(this.config.claimIntervalMs, () => this.sweepAbandoned());
    // Also at once: a worker that lives less than one interval (a crash loop) still trims.
    await this.queue.trimAcknowledged();
    this.every(TRIM_INTERVAL_MS, () => this.queue.trimAcknowledged());
    this.every(CAPACITY_REPORT_MS, () => this.capacity.report());
    await this.capacity.report();
    this.readLoopsDone = Promise.all(this.partitions.map((partition) => this.readLoop(partition.index))).then(() => undefined);
    this.logger.info(
      { consumer: this.consumerName, concurrency: this.config.workerConcurrency, partitions: this.partitions.length, model: this.provider.name },
      'worker ready',
    );
  }

  private unreadInQueue(): Promise<boolean> {
    this.unreadCheck ??= this.queue
      .hasUnread()
      .catch(() => false)
      .finally(() => (this.unreadCheck = undefined));
    return this.unreadCheck;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    this.slotFreed();
    for (const reader of this.readers) reader.destroy();
    await this.readLoopsDone;
    await this.handBackWaiting();
    await this.waitForDrains(this.config.shutdownGraceMs);
    for (const { drain } of this.active.values()) drain.handBack();
    await this.waitForDrains(this.config.shutdownGraceMs + 5000);
    await this.capacity.withdraw().catch(() => undefined);
    await Promise.all(
      this.partitions.map((partition) => unsubscribe(this.subscriber, partition.cancelChannel, this.onCancel, this.config.redis.cluster)),
    ).catch(() => undefined);
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

  private get free(): number {
    return this.config.workerConcurrency - this.active.size - this.waiting.length;
  }

  /** Wakes every read loop waiting for a slot. */
  private slotFreed(): void {
    for (const wake of this.slotWaiters.splice(0)) wake();
  }

  /**
   * One loop per partition, each blocking on its own connection, so a busy partition never keeps
   * another one unread. Each asks for its share of the free slots, so that together they do not
   * take much more than this worker can start.
   */
  private async readLoop(partition: number): Promise<void> {
    while (this.running) {
      const free = this.free;
      if (free <= 0) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        continue;
      }
      try {
        const entries = await this.queue.read(partition, Math.ceil(free / this.partitions.length), READ_BLOCK_MS);
        for (const entry of entries) this.dispatch(entry);
      } catch (error) {
        if (!this.running) return;
        this.logger.warn({ err: error }, 'reading the queue failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private dispatch(entry: PartitionEntry): void {
    // A stream entry id starts with the milliseconds at which Redis stored it.
    const written = Number(entry.id.split('-')[0]);
    if (Number.isFinite(written)) this.metrics.queueLag.observe(Math.max(0, Date.now() - written) / 1000);
    const current = this.active.get(entry.token);
    if (current !== undefined) {
      current.entries.push({ entry, startsBefore: current.drain.startsSent });
      return;
    }
    if (this.active.size >= this.config.workerConcurrency) {
      this.waiting.push(entry);
      return;
    }
    this.runDrain(entry).catch((error: unknown) => {
      // Entries stay pending: their idle time grows and another worker (or we) take them over.
      this.logger.error({ err: error, session: tokenTag(entry.token) }, 'session drain failed; its work will be retried');
    });
  }

  private async runDrain(entry: PartitionEntry): Promise<void> {
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
      metrics: this.metrics,
      // With a slot free this worker's blocking reads take any waiting entry at once: only a full
      // worker needs to ask (and spend the round trip).
      othersWaiting: () => {
        if (this.waiting.length > 0) return Promise.resolve(true);
        return this.active.size < this.config.workerConcurrency ? Promise.resolve(false) : this.unreadInQueue();
      },
      onAnswered: (ms) => this.capacity.recordAnswer(ms),
    });
    const active: ActiveDrain = { drain, entries: [{ entry, startsBefore: 0 }] };
    this.active.set(entry.token, active);
    this.metrics.activeSessions.inc();
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
    let address: string | undefined;
    try {
      const wake = await this.store.wakeState(entry.token, entry.id);
      // Checked again after the wait, and detached at once: an entry attached meanwhile needs a drain.
      if (wake.stale && active.entries.length === 1) {
        detach();
        await this.queue.ack([entry]);
        return;
      }
      if (!(await this.addressSlots.take(wake.address, drain.owner))) {
        // Its address has enough answers in progress: the entry goes to the back after a short
        // wait (not at once, or workers would pass it around while the address's answers run).
        detach();
        // The slot is free during the wait: the read loops must not sit behind it.
        this.slotFreed();
        await new Promise((resolve) => setTimeout(resolve, ADDRESS_BUSY_RETRY_MS));
        await this.requeue(entry.token);
        await this.queue.ack(active.entries.map((attached) => attached.entry));
        return;
      }
      address = wake.address;
      // Sent together on one connection: Redis runs the lease request first, and the drain's first
      // startTurn answers "lost" when another worker holds the session (that worker will see this
      // message before it lets go). One round trip instead of two before the model is asked.
      void this.store.acquireLease(entry.token, drain.owner).catch(() => undefined);
      const end = await drain.run();
      // Given back before the session is re-queued, so its next entry finds the place free.
      await this.addressSlots.release(address, drain.owner);
      address = undefined;
      detach();
      // The slot is free once the model is done with it: acknowledging and re-queueing take Redis
      // round trips that the next session need not wait for.
      this.startWaiting();
      this.slotFreed();
      await this.settle(entry.token, active, end);
    } finally {
      // Only when the drain failed before giving its place back above.
      await this.addressSlots.release(address, drain.owner).catch(() => undefined);
      this.metrics.activeSessions.dec();
      if (detached) this.settling -= 1;
      else if (this.active.get(entry.token) === active) this.active.delete(entry.token);
      this.startWaiting();
      this.slotFreed();
    }
  }

  private startWaiting(): void {
    while (this.running && this.waiting.length > 0 && this.active.size < this.config.workerConcurrency) {
      const next = this.waiting.shift();
      if (next !== undefined) this.dispatch(next);
    }
  }

  /** Entries that never started go back to the queue for another worker, at once. */
  private async handBackWaiting(): Promise<void> {
    const entries = this.waiting.splice(0);
    await Promise.all(entries.map((entry) => this.requeue(entry.token)));
    await this.queue.ack(entries);
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
    if (end === 'handed-back' || end === 'lease-lost' || (uncovered && end !== 'expired')) await this.requeue(token);
    await this.queue.ack(active.entries.map((attached) => attached.entry));
  }

  /** Puts the session at the back of the queue; older entries of it become redundant (AnswerStore.wakeState). */
  private async requeue(token: string): Promise<void> {
    await this.store.markWake(token, await enqueue(this.redis, sessionPartition(this.partitions, token).queue, token));
  }

  private async keepAlive(): Promise<void> {
    const drains = [...this.active.values()];
    await Promise.all([
      // A drain that has not asked for its lease yet (it is checking its entry and its address's
      // cap) holds none: "not renewed" would wrongly mark it lost before it begins.
      ...drains.filter(({ drain }) => drain.startsSent > 0).map(async ({ drain }) => {
        if (!(await this.store.renewLease(drain.token, drain.owner))) drain.loseLease();
      }),
      this.queue.heartbeat([...drains.flatMap((active) => active.entries.map((attached) => attached.entry)), ...this.waiting]),
    ]);
  }

  private async claimAbandoned(): Promise<void> {
    const free = this.free;
    if (!this.running || free <= 0) return;
    const entries = await this.queue.claimAbandoned(this.config.claimIdleMs, free);
    if (entries.length > 0) this.logger.warn({ count: entries.length }, 'took over work of a worker that stopped responding');
    this.metrics.takeovers.inc(entries.length);
    for (const entry of entries) this.dispatch(entry);
  }

  /**
   * Finds sessions with an unanswered turn that no worker owns and no wake-up will reach (a
   * wake-up lost in a failover or a crash, a hand-back that failed) and wakes a worker for them.
   * Only sessions noted longer ago than CLAIM_IDLE_MS, and whose wake-up the queue has already
   * handed out, are looked at: anything younger is still in line or being claimed.
   */
  private async sweepAbandoned(): Promise<void> {
    // A round visits every old note, so a large backlog may outlast the interval: one at a time.
    if (!this.running || this.sweeping) return;
    this.sweeping = true;
    try {
      await Promise.all(this.partitions.map((partition) => this.sweepPartition(partition)));
    } finally {
      this.sweeping = false;
    }
  }

  /** Each partition by its own queue's progress: a backlog in one does not hold back the others. */
  private async sweepPartition(partition: QueuePartition): Promise<void> {
    const deliveredUpTo = await this.queue.deliveredUpTo(partition.index);
    const olderThan = Math.min(Date.now() - this.config.claimIdleMs, deliveredUpTo);
    await sweepUnanswered(this.redis, partition.unanswered, olderThan, SWEEP_BATCH, (note) => this.sweepOne(partition, note));
  }

  /** True when the note was forgotten (its session is answered or gone). */
  private async sweepOne(partition: QueuePartition, note: UnansweredNote): Promise<boolean> {
    const standing = await this.store.inspect(note.token);
    if (standing === 'expired' || standing === 'answered') return forgetNote(this.redis, partition.unanswered, note);
    if (standing === 'owned') return false;
    this.logger.warn({ session: tokenTag(note.token) }, 'found an unanswered turn that no worker owns; re-queued it');
    await enqueue(this.redis, partition.queue, note.token);
    return false;
  }

  /** One function, so stop() unsubscribes the very listener start() subscribed. */
  private readonly onCancel: ChannelListener = (message) => {
    const [token = '', turn = ''] = message.toString().split(' ');
    this.active.get(token)?.drain.cancel(Number(turn));
  };

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
  // One blocking connection per queue partition (see PartitionedQueue).
  const readers = await Promise.all(Array.from({ length: config.queuePartitions }, () => connectRedis(duplicateClient(redis, logger), config.redis)));
  const subscriber = await connectRedis(duplicateClient(redis, logger), config.redis);
  const metrics = new WorkerMetrics();
  const worker = new Worker(config, model, logger, redis, readers, subscriber, metrics);
  await worker.start();
  const readiness = async (): Promise<string[]> => [
    ...(model instanceof UnavailableProvider ? ['the language model did not start'] : []),
    ...(await redisProblems(() => redis.ping())),
  ];
  const listener =
    config.workerMetricsPort === undefined
      ? undefined
      : await startMetricsServer({ host: config.metricsHost, port: config.workerMetricsPort, registry: metrics.registry, readiness, logger });
  return {
    consumer: worker.consumer,
    metricsUrl: listener?.url,
    stop: async () => {
      await listener?.close();
      await worker.stop();
    },
  };
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
    return new UnavailableProvider(provider.name, failure);
  }
}
