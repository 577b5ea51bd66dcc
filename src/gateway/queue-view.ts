/**
 * The gateway's view of the queue: which sessions wait for a worker slot, in what order, and how
 * long that takes. Read at most once per REFRESH_MS per gateway however many sockets ask (one
 * XINFO, one XRANGE of the unread entries, one HGETALL of the workers' capacity reports).
 *
 * Position: sessions take turns (a drain yields after each answer while others wait), and a
 * session's newest entry is the one that counts (older ones are skipped), so sessions stand in
 * the order of their newest unread entry. Estimate: position p waits about ceil(p / slots) answers.
 */
import { z } from 'zod';
import { compareEventIds } from '../contracts/event-ids.js';
import { workerCapacitySchema } from '../contracts/records.js';
import { lastDelivered, type GroupRedis } from '../store/queue.js';
import { streamRangeSchema, stringMapSchema } from '../store/replies.js';

const REFRESH_MS = 1000;
/** Unread entries looked at: positions past this many are reported as this many. */
const SCAN_LIMIT = 2000;
/** A capacity report older than this is of a worker that stopped. */
const REPORT_STALE_MS = 10_000;

export interface QueueSnapshot {
  /** Waiting sessions: token -> position (1 = next). */
  readonly positions: ReadonlyMap<string, number>;
  /** Milliseconds a session at `position` waits, or undefined while no worker has reported its speed. */
  estimateMs(position: number): number | undefined;
}

const entryFields = z.object({ t: z.string() });

/** The commands the queue view reads with. */
export interface QueueViewRedis extends GroupRedis {
  xRange(key: string, start: string, end: string, options: { COUNT: number }): Promise<unknown>;
  hGetAll(key: string): Promise<unknown>;
}

export class QueueView {
  private cached: { at: number; snapshot: Promise<QueueSnapshot> } | undefined;

  constructor(
    private readonly redis: QueueViewRedis,
    /** The queue partitions' streams (all of them: a session stands in line across partitions). */
    private readonly keys: { queues: readonly string[]; group: string; capacity: string },
  ) {}

  snapshot(): Promise<QueueSnapshot> {
    const now = Date.now();
    if (this.cached === undefined || now - this.cached.at >= REFRESH_MS) {
      const snapshot = this.read();
      // A failed read is not cached: the next caller tries again.
      snapshot.catch(() => (this.cached = undefined));
      this.cached = { at: now, snapshot };
    }
    return this.cached.snapshot;
  }

  private async read(): Promise<QueueSnapshot> {
    const [unread, reports] = await Promise.all([Promise.all(this.keys.queues.map((queue) => this.unread(queue))), this.redis.hGetAll(this.keys.capacity)]);
    const newest = new Map<string, string>();
    for (const { token, id } of unread.flat().sort((a, b) => compareEventIds(a.id, b.id))) newest.set(token, id);
    const positions = new Map([...newest].sort((a, b) => compareEventIds(a[1], b[1])).map(([token], index) => [token, index + 1] as const));
    const { slots, answerMs } = capacityOf(Object.values(stringMapSchema.parse(reports)));
    return {
      positions,
      estimateMs: (position) => (slots === 0 || answerMs === 0 ? undefined : Math.ceil(position / slots) * answerMs),
    };
  }

  /** The entries of one partition that no worker has read yet: (session, entry id). */
  private async unread(queue: string): Promise<Array<{ token: string; id: string }>> {
    const lastRead = await lastDelivered(this.redis, queue, this.keys.group).catch(() => undefined); // no queue yet
    const entries = await this.redis.xRange(queue, lastRead === undefined ? '-' : `(${lastRead}`, '+', { COUNT: SCAN_LIMIT });
    return streamRangeSchema.parse(entries).flatMap((entry) => {
      const fields = entryFields.safeParse(entry.message);
      return fields.success ? [{ token: fields.data.t, id: entry.id }] : [];
    });
  }
}

/**
 * Slots of the workers that reported lately, and their time per answer weighted by slots (of the
 * workers that have answered something: a fresh worker knows no speed yet).
 */
function capacityOf(raw: readonly string[]): { slots: number; answerMs: number } {
  let slots = 0;
  let measuredSlots = 0;
  let weighted = 0;
  for (const text of raw) {
    let report;
    try {
      report = workerCapacitySchema.safeParse(JSON.parse(text));
    } catch {
      continue;
    }
    if (!report.success || Date.now() - report.data.at > REPORT_STALE_MS) continue;
    slots += report.data.slots;
    if (report.data.answerMs === 0) continue;
    measuredSlots += report.data.slots;
    weighted += report.data.slots * report.data.answerMs;
  }
  return { slots, answerMs: measuredSlots === 0 ? 0 : Math.round(weighted / measuredSlots) };
}
