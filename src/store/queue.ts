/**
 * The work queue: one Redis Stream read by one consumer group of workers. An entry only names a
 * session ("there is something to answer"); the messages themselves live in the session, so a
 * worker that drains a session answers every unanswered turn, in order, whatever entry woke it.
 */
import { z } from 'zod';
import { isValidToken } from '../contracts/keys.js';
import type { RedisClient } from './redis.js';

export interface QueueEntry {
  readonly id: string;
  readonly token: string;
}

const entrySchema = z.object({ t: z.string().refine(isValidToken, 'a session token') });

function toEntries(messages: ReadonlyArray<{ id: string; message: Record<string, string> } | null>): {
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

/** Wakes a worker for the session; returns the entry's id. */
export async function enqueue(redis: RedisClient, queueKey: string, token: string): Promise<string> {
  return redis.xAdd(queueKey, '*', { t: token });
}

/** Worker side of the queue. `reader` must be a connection of its own: XREADGROUP blocks. */
export class QueueConsumer {
  constructor(
    private readonly redis: RedisClient,
    private readonly reader: RedisClient,
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
    const streams = z.array(z.object({ messages: z.array(z.any()) })).nullable().parse(reply);
    const messages = (streams ?? []).flatMap((stream) => stream.messages) as Array<{ id: string; message: Record<string, string> }>;
    return this.keepValid(messages);
  }

  /** Entries of consumers that stopped renewing them for minIdleMs (dead workers). */
  async claimAbandoned(minIdleMs: number, count: number): Promise<QueueEntry[]> {
    const reply = await this.redis.xAutoClaim(this.queueKey, this.group, this.consumer, minIdleMs, '0-0', { COUNT: count });
    return this.keepValid(reply.messages as Array<{ id: string; message: Record<string, string> } | null>);
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
   * True when the queue holds entries no worker has read yet: other sessions wait for a slot.
   * (The newest entry is never trimmed while unread: trimming keeps everything after the last read.)
   */
  async hasUnread(): Promise<boolean> {
    const [groups, newest] = await Promise.all([this.redis.xInfoGroups(this.queueKey), this.redis.xRevRange(this.queueKey, '+', '-', { COUNT: 1 })]);
    const group = groups.find((candidate) => String(candidate.name) === this.group);
    const newestId = newest?.[0]?.id;
    return group !== undefined && newestId !== undefined && newestId !== String(group['last-delivered-id']);
  }

  /** Drops entries every consumer has acknowledged, so the queue stays as long as the backlog. */
  async trimAcknowledged(): Promise<void> {
    const [groups, pending] = await Promise.all([
      this.redis.xInfoGroups(this.queueKey),
      this.redis.xPending(this.queueKey, this.group),
    ]);
    const group = groups.find((candidate) => String(candidate.name) === this.group);
    if (group === undefined) return;
    const lastDelivered = String(group['last-delivered-id']);
    const oldestPending = pending.firstId === null ? null : String(pending.firstId);
    const keepFrom = oldestPending ?? lastDelivered;
    await this.redis.xTrim(this.queueKey, 'MINID', keepFrom, { strategyModifier: '~' });
  }

  private async keepValid(messages: ReadonlyArray<{ id: string; message: Record<string, string> } | null>): Promise<QueueEntry[]> {
    const { valid, invalid } = toEntries(messages);
    await this.ack(invalid);
    return valid;
  }
}
