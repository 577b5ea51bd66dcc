/**
 * The work queue: Redis Streams (one per partition, see QueuePartition) read by one consumer group
 * of workers each. An entry only names a session ("there is something to answer"); the messages
 * themselves live in the session, so a worker that drains a session answers every unanswered
 * turn, in order, whatever entry woke it.
 */
import { z } from 'zod';
import { compareEventIds } from '../contracts/event-ids.js';
import { isValidToken, type QueuePartition } from '../contracts/keys.js';
import { autoClaimSchema, groupsSchema, pendingSummarySchema, scoredMembersSchema, streamRangeSchema, streamReadSchema, type StreamEntry } from './replies.js';
import { forgetUnanswered, runScript, type ScriptRedis } from './scripts.js';

export interface QueueEntry {
  readonly id: string;
  readonly token: string;
}

const entrySchema = z.object({ t: z.string().refine(isValidToken, 'a session token') });

function toEntries(messages: ReadonlyArray<StreamEntry | null>): {
  valid: QueueEntry[];
  invalid: string[];
} {
  const valid: QueueEntry[] = [];
  const invalid: string[] = [];
  for (const message of messages) {
    if (message === null) continue;
    const parsed = entrySchema.safeParse(message.message);
    if (parsed.success) valid.push({ id: message.id, token: parsed.data.t });
    else invalid.push(message.id);
  }
  return { valid, invalid };
}

/** The commands the gateway uses to wake workers. */
export interface WakeUpRedis {
  xAdd(key: string, id: string, message: Record<string, string>): Promise<string>;
  zAdd(key: string, member: { score: number; value: string }): Promise<unknown>;
}

/** The commands of the workers' sweep over the unanswered notes. */
export interface SweepRedis extends ScriptRedis {
  zRangeByScoreWithScores(key: string, min: string, max: number, options: { LIMIT: { offset: number; count: number } }): Promise<unknown>;
}

/** The commands to look at a queue's consumer group. */
export interface GroupRedis {
  xInfoGroups(key: string): Promise<unknown>;
}

/** The id of the newest entry the group has handed out; undefined when there is no such group. */
export async function lastDelivered(redis: GroupRedis, queueKey: string, group: string): Promise<string | undefined> {
  const groups = groupsSchema.parse(await redis.xInfoGroups(queueKey));
  return groups.find((candidate) => candidate.name === group)?.['last-delivered-id'];
}

/** The commands of a worker's side of the queue (blocking reads go to a QueueReader). */
export interface QueueRedis extends GroupRedis {
  xGroupCreate(key: string, group: string, id: string, options: { MKSTREAM: boolean }): Promise<unknown>;
  xAutoClaim(key: string, group: string, consumer: string, minIdleMs: number, start: string, options: { COUNT: number }): Promise<unknown>;
  xClaimJustId(key: string, group: string, consumer: string, minIdleMs: number, ids: string[]): Promise<unknown>;
  xAck(key: string, group: string, ids: string[]): Promise<unknown>;
  xRevRange(key: string, end: string, start: string, options: { COUNT: number }): Promise<unknown>;
  xPending(key: string, group: string): Promise<unknown>;
  xTrim(key: string, strategy: 'MINID', threshold: string, options: { strategyModifier: '~' }): Promise<unknown>;
}

export interface QueueReader {
  xReadGroup(group: string, consumer: string, stream: { key: string; id: string }, options: { COUNT: number; BLOCK: number }): Promise<unknown>;
}

/** Wakes a worker for the session; returns the entry's id. */
export async function enqueue(redis: WakeUpRedis, queueKey: string, token: string): Promise<string> {
  return redis.xAdd(queueKey, '*', { t: token });
}

/** Notes that the session may have an unanswered turn (see GlobalKeys.unanswered). */
export async function markUnanswered(redis: WakeUpRedis, unansweredKey: string, token: string): Promise<void> {
  await redis.zAdd(unansweredKey, { score: Date.now(), value: token });
}

export interface UnansweredNote {
  readonly token: string;
  /** When its last message was accepted (ms). */
  readonly notedAt: number;
}

/** Sessions noted as unanswered before `olderThan` (ms), oldest first, from the `offset`-th on. */
async function unansweredBefore(redis: SweepRedis, unansweredKey: string, olderThan: number, offset: number, count: number): Promise<UnansweredNote[]> {
  const reply = await redis.zRangeByScoreWithScores(unansweredKey, '-inf', olderThan, { LIMIT: { offset, count } });
  return scoredMembersSchema.parse(reply).map(({ value, score }) => ({ token: value, notedAt: score }));
}

/**
 * Hands every note older than `olderThan` to `visit`, oldest first, `batch` at a time; `visit`
 * answers whether it forgot the note (the next batch then starts that much earlier). Every note
 * is visited, not one batch: each finished session leaves a note behind, and a sweep that forgot
 * at most one batch per round would fall behind a busy worker and let the set grow without end.
 * Returns how many notes were visited.
 */
export async function sweepUnanswered(
  redis: SweepRedis,
  unansweredKey: string,
  olderThan: number,
  batch: number,
  visit: (note: UnansweredNote) => Promise<boolean>,
): Promise<number> {
  let kept = 0;
  let visited = 0;
  for (;;) {
    const notes = await unansweredBefore(redis, unansweredKey, olderThan, kept, batch);
    const forgotten = await Promise.all(notes.map(visit));
    kept += forgotten.filter((gone) => !gone).length;
    visited += notes.length;
    if (notes.length < batch) return visited;
  }
}

/** Forgets the note unless the session was noted again since it was read; true when forgotten. */
export async function forgetNote(redis: SweepRedis, unansweredKey: string, note: UnansweredNote): Promise<boolean> {
  return (await runScript(redis, forgetUnanswered, [unansweredKey], [note.token, String(note.notedAt)])).reply === 1;
}

/** Worker side of the queue. `reader` must be a connection of its own: XREADGROUP blocks. */
export class QueueConsumer {
  constructor(
    private readonly redis: QueueRedis,
    private readonly reader: QueueReader,
    private readonly queueKey: string,
    private readonly group: string,
    readonly consumer: string,
  ) {}

  async ensureGroup(): Promise<void> {
    try {
      await this.redis.xGroupCreate(this.queueKey, this.group, '0', { MKSTREAM: true });
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  /** New entries, waiting up to blockMs. Malformed entries are acknowledged and dropped. */
  async read(count: number, blockMs: number): Promise<QueueEntry[]> {
    const reply = await this.reader.xReadGroup(this.group, this.consumer, { key: this.queueKey, id: '>' }, { COUNT: count, BLOCK: blockMs });
    return this.keepValid((streamReadSchema.parse(reply) ?? []).flatMap((stream) => stream.messages));
  }

  /** Entries of consumers that stopped renewing them for minIdleMs (dead workers). */
  async claimAbandoned(minIdleMs: number, count: number): Promise<QueueEntry[]> {
    const reply = await this.redis.xAutoClaim(this.queueKey, this.group, this.consumer, minIdleMs, '0-0', { COUNT: count });
    return this.keepValid(autoClaimSchema.parse(reply).messages);
  }

  /** Resets the idle time of entries this worker is still working on, so nobody claims them. */
  async heartbeat(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.xClaimJustId(this.queueKey, this.group, this.consumer, 0, [...ids]);
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.xAck(this.queueKey, this.group, [...ids]);
  }

  /**
   * The time (ms) up to which the queue has handed its entries out: a wake-up sent after it has
   * not been read yet, so its session is waiting in line, not abandoned. When nothing is waiting,
   * every wake-up has been handed out: Infinity.
   */
  async deliveredUpTo(): Promise<number> {
    const { delivered, newest } = await this.readPosition();
    if (newest === undefined || compareEventIds(delivered, newest) >= 0) return Number.POSITIVE_INFINITY;
    return Number(delivered.split('-')[0]);
  }

  /**
   * True when the queue holds entries no worker has read yet: other sessions wait for a slot.
   * (The newest entry is never trimmed while unread: trimming keeps everything after the last read.)
   */
  async hasUnread(): Promise<boolean> {
    const { delivered, newest } = await this.readPosition();
    return newest !== undefined && compareEventIds(delivered, newest) < 0;
  }

  /** The id of the group's last handed-out entry and of the newest entry. */
  private async readPosition(): Promise<{ delivered: string; newest: string | undefined }> {
    const [delivered, newest] = await Promise.all([
      lastDelivered(this.redis, this.queueKey, this.group),
      this.redis.xRevRange(this.queueKey, '+', '-', { COUNT: 1 }),
    ]);
    return { delivered: delivered ?? '0-0', newest: streamRangeSchema.parse(newest)[0]?.id };
  }

  /** Drops entries every consumer has acknowledged, so the queue stays as long as the backlog. */
  async trimAcknowledged(): Promise<void> {
    const [delivered, pending] = await Promise.all([
      lastDelivered(this.redis, this.queueKey, this.group),
      this.redis.xPending(this.queueKey, this.group),
    ]);
    if (delivered === undefined) return;
    const keepFrom = pendingSummarySchema.parse(pending).firstId ?? delivered;
    await this.redis.xTrim(this.queueKey, 'MINID', keepFrom, { strategyModifier: '~' });
  }

  private async keepValid(messages: ReadonlyArray<StreamEntry | null>): Promise<QueueEntry[]> {
    const { valid, invalid } = toEntries(messages);
    await this.ack(invalid);
    return valid;
  }
}

/** An entry and the partition it came from (acknowledged and renewed there). */
export interface PartitionEntry extends QueueEntry {
  readonly partition: number;
}

/**
 * A worker's side of every partition: one QueueConsumer per partition, each with a blocking
 * connection of its own. On a Cluster XREADGROUP may only name streams of one slot, so one read
 * per partition is the only way to block on all of them at once; on one Redis it costs a few
 * idle connections and keeps both modes on one code path.
 */
export class PartitionedQueue {
  private readonly consumers: readonly QueueConsumer[];

  constructor(
    redis: QueueRedis,
    readers: readonly QueueReader[],
    readonly partitions: readonly QueuePartition[],
    group: string,
    consumer: string,
  ) {
    this.consumers = partitions.map((partition, index) => {
      const reader = readers[index];
      if (reader === undefined) throw new Error(`no reader connection for queue partition ${index}`);
      return new QueueConsumer(redis, reader, partition.queue, group, consumer);
    });
  }

  async ensureGroups(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.ensureGroup()));
  }

  async read(partition: number, count: number, blockMs: number): Promise<PartitionEntry[]> {
    const entries = await this.consumer(partition).read(count, blockMs);
    return entries.map((entry) => ({ ...entry, partition }));
  }

  /** Up to `count` abandoned entries, taken from the partitions in turn (a random one first). */
  async claimAbandoned(minIdleMs: number, count: number): Promise<PartitionEntry[]> {
    const claimed: PartitionEntry[] = [];
    const first = Math.floor(Math.random() * this.consumers.length);
    for (let step = 0; step < this.consumers.length && claimed.length < count; step += 1) {
      const partition = (first + step) % this.consumers.length;
      const entries = await this.consumer(partition).claimAbandoned(minIdleMs, count - claimed.length);
      claimed.push(...entries.map((entry) => ({ ...entry, partition })));
    }
    return claimed;
  }

  async heartbeat(entries: readonly PartitionEntry[]): Promise<void> {
    await this.eachPartition(entries, (consumer, ids) => consumer.heartbeat(ids));
  }

  async ack(entries: readonly PartitionEntry[]): Promise<void> {
    await this.eachPartition(entries, (consumer, ids) => consumer.ack(ids));
  }

  deliveredUpTo(partition: number): Promise<number> {
    return this.consumer(partition).deliveredUpTo();
  }

  /** True when any partition holds entries no worker has read yet. */
  async hasUnread(): Promise<boolean> {
    const unread = await Promise.all(this.consumers.map((consumer) => consumer.hasUnread()));
    return unread.includes(true);
  }

  async trimAcknowledged(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.trimAcknowledged()));
  }

  private consumer(partition: number): QueueConsumer {
    const consumer = this.consumers[partition];
    if (consumer === undefined) throw new Error(`no queue partition ${partition}`);
    return consumer;
  }

  private async eachPartition(entries: readonly PartitionEntry[], task: (consumer: QueueConsumer, ids: string[]) => Promise<void>): Promise<void> {
    const byPartition = new Map<number, string[]>();
    for (const entry of entries) byPartition.set(entry.partition, [...(byPartition.get(entry.partition) ?? []), entry.id]);
    await Promise.all([...byPartition].map(([partition, ids]) => task(this.consumer(partition), ids)));
  }
}
