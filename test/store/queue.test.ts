/**
 * The work queue's consumer-group semantics against the real Redis: no entry goes to two
 * consumers, abandoned entries are taken over (and only those), heartbeats protect live work,
 * acknowledged entries are trimmed, malformed entries are dropped.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { globalKeys, partitionOf, queuePartitions } from '../../src/contracts/keys.js';
import { enqueue, forgetNote, markUnanswered, PartitionedQueue, QueueConsumer, sweepUnanswered, type QueueEntry, type UnansweredNote } from '../../src/store/queue.js';
import { deleteKeys, randomPrefix, testRedisClient, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
const readers: TestRedis[] = [];
const prefixes: string[] = [];

before(async () => {
  redis = testRedisClient();
  await redis.connect();
});
afterEach(async () => {
  for (const reader of readers.splice(0)) reader.destroy();
  for (const prefix of prefixes.splice(0)) await deleteKeys(prefix);
});
after(() => {
  redis.destroy();
});

interface Queue {
  readonly key: string;
  readonly group: string;
  consumer(name: string): Promise<QueueConsumer>;
  /** Ids of the group's pending entries, with their owner. */
  pending(): Promise<Array<{ id: string; consumer: string }>>;
}

async function newQueue(): Promise<Queue> {
  const prefix = randomPrefix();
  prefixes.push(prefix);
  const { queue: key, group } = globalKeys(prefix);
  const queue: Queue = {
    key,
    group,
    async consumer(name) {
      const reader = redis.duplicate();
      await reader.connect();
      readers.push(reader);
      const consumer = new QueueConsumer(redis, reader, key, group, name);
      await consumer.ensureGroup();
      return consumer;
    },
    async pending() {
      const rows = await redis.xPendingRange(key, group, '-', '+', 10_000);
      return rows.map((row) => ({ id: String(row.id), consumer: String(row.consumer) }));
    },
  };
  return queue;
}

async function enqueueMany(queue: Queue, count: number): Promise<string[]> {
  const tokens = Array.from({ length: count }, () => randomUUID());
  for (const token of tokens) await enqueue(redis, queue.key, token);
  return tokens;
}

const ids = (entries: readonly QueueEntry[]) => entries.map((entry) => entry.id);

/** Ids of every entry still in the stream, oldest first. */
async function streamIds(key: string): Promise<string[]> {
  const entries = (await redis.xRange(key, '-', '+')) ?? [];
  return entries.flatMap((entry) => (entry === null ? [] : [entry.id]));
}

test('ensureGroup is idempotent and works on a queue that does not exist yet', async () => {
  const queue = await newQueue();
  const a = await queue.consumer('a');
  await a.ensureGroup();
  await a.ensureGroup();
  const groups = await redis.xInfoGroups(queue.key);
  assert.deepEqual(
    groups.map((group) => String(group.name)),
    [queue.group],
  );
});

test('two consumers reading at once never receive the same entry, and together receive all', async () => {
  const queue = await newQueue();
  const [a, b] = await Promise.all([queue.consumer('a'), queue.consumer('b')]);
  const tokens = await enqueueMany(queue, 300);
  const received = new Map<string, QueueEntry[]>([
    ['a', []],
    ['b', []],
  ]);
  const drainInto = async (consumer: QueueConsumer, sink: QueueEntry[]) => {
    for (;;) {
      const entries = await consumer.read(7, 50);
      if (entries.length === 0) return;
      sink.push(...entries);
    }
  };
  await Promise.all([drainInto(a, received.get('a') ?? []), drainInto(b, received.get('b') ?? [])]);
  const fromA = received.get('a') ?? [];
  const fromB = received.get('b') ?? [];
  const idsA = new Set(ids(fromA));
  assert.equal(
    ids(fromB).filter((id) => idsA.has(id)).length,
    0,
    'no entry delivered to both',
  );
  assert.ok(fromA.length > 0 && fromB.length > 0, `both consumers got work (${fromA.length}/${fromB.length})`);
  assert.deepEqual(
    [...fromA, ...fromB].map((entry) => entry.token).sort(),
    [...tokens].sort(),
  );
  // Each pending entry is owned by the consumer that received it.
  const owners = new Map((await queue.pending()).map((row) => [row.id, row.consumer]));
  assert.equal(owners.size, 300);
  for (const entry of fromA) assert.equal(owners.get(entry.id), 'a');
  for (const entry of fromB) assert.equal(owners.get(entry.id), 'b');
});

test('read blocks for new entries and wakes up when one arrives', async () => {
  const queue = await newQueue();
  const a = await queue.consumer('a');
  const token = randomUUID();
  const started = Date.now();
  const reading = a.read(10, 2000);
  await sleep(100);
  await enqueue(redis, queue.key, token);
  const entries = await reading;
  assert.deepEqual(
    entries.map((entry) => entry.token),
    [token],
  );
  assert.ok(Date.now() - started < 1500, 'woke up on the new entry, not at the timeout');
  assert.deepEqual(await a.read(10, 50), [], 'an empty read after the block time');
});

test('claimAbandoned takes entries idle longer than minIdle, and leaves fresher ones alone', async () => {
  const queue = await newQueue();
  const dead = await queue.consumer('dead');
  const alive = await queue.consumer('alive');
  const rescuer = await queue.consumer('rescuer');
  await enqueueMany(queue, 3);
  const old = await dead.read(10, 50);
  assert.equal(old.length, 3);
  await sleep(400);
  await enqueueMany(queue, 2);
  const fresh = await alive.read(10, 50);
  assert.equal(fresh.length, 2);

  const claimed = await rescuer.claimAbandoned(300, 10);
  assert.deepEqual(ids(claimed).sort(), ids(old).sort());
  assert.deepEqual(
    claimed.map((entry) => entry.token).sort(),
    old.map((entry) => entry.token).sort(),
  );
  const owners = new Map((await queue.pending()).map((row) => [row.id, row.consumer]));
  for (const entry of old) assert.equal(owners.get(entry.id), 'rescuer');
  for (const entry of fresh) assert.equal(owners.get(entry.id), 'alive');

  // Just claimed, so idle again: a second rescuer finds nothing.
  const second = await queue.consumer('second');
  assert.deepEqual(await second.claimAbandoned(300, 10), []);
});

test('claimAbandoned honours its count', async () => {
  const queue = await newQueue();
  const dead = await queue.consumer('dead');
  const rescuer = await queue.consumer('rescuer');
  await enqueueMany(queue, 5);
  assert.equal((await dead.read(10, 50)).length, 5);
  await sleep(150);
  assert.equal((await rescuer.claimAbandoned(100, 2)).length, 2);
  assert.equal((await rescuer.claimAbandoned(100, 10)).length, 3);
});

test('heartbeat resets the idle time, so live work is not taken over', async () => {
  const queue = await newQueue();
  const worker = await queue.consumer('worker');
  const other = await queue.consumer('other');
  await enqueueMany(queue, 3);
  const entries = await worker.read(10, 50);
  assert.equal(entries.length, 3);
  const minIdle = 700;
  for (let beat = 0; beat < 4; beat += 1) {
    await sleep(250);
    await worker.heartbeat(ids(entries));
  }
  // 1000 ms since delivery, but only ~250 ms since the last heartbeat.
  assert.deepEqual(await other.claimAbandoned(minIdle, 10), []);
  const rows = await redis.xPendingRange(queue.key, queue.group, '-', '+', 10);
  for (const row of rows) {
    assert.equal(String(row.consumer), 'worker');
    assert.ok(row.millisecondsSinceLastDelivery < minIdle, `idle ${row.millisecondsSinceLastDelivery} ms`);
    assert.equal(row.deliveriesCounter, 1, 'a heartbeat is not a redelivery');
  }
  await worker.heartbeat([]); // nothing to renew: no error, no effect

  // Once the heartbeats stop, the entries are taken over.
  await sleep(minIdle + 100);
  assert.deepEqual(ids(await other.claimAbandoned(minIdle, 10)).sort(), ids(entries).sort());
});

test('ack removes entries from the pending list, and only those', async () => {
  const queue = await newQueue();
  const worker = await queue.consumer('worker');
  await enqueueMany(queue, 4);
  const entries = await worker.read(10, 50);
  assert.equal((await queue.pending()).length, 4);
  await worker.ack(ids(entries.slice(0, 3)));
  assert.deepEqual(
    (await queue.pending()).map((row) => row.id),
    ids(entries.slice(3)),
  );
  await worker.ack([]);
  await worker.ack(ids(entries.slice(0, 3))); // acknowledging twice is harmless
  assert.equal((await queue.pending()).length, 1);
  // An acknowledged entry is never handed out again, not even to a rescuer.
  const rescuer = await queue.consumer('rescuer');
  await sleep(120);
  assert.deepEqual(ids(await rescuer.claimAbandoned(100, 10)), ids(entries.slice(3)));
});

test('trimAcknowledged drops acknowledged entries and keeps pending and undelivered ones', async () => {
  const queue = await newQueue();
  const worker = await queue.consumer('worker');
  await enqueueMany(queue, 600);
  const all = await streamIds(queue.key);
  assert.equal(all.length, 600);

  // Deliver 500: acknowledge the first 400, keep 100 pending; 100 stay undelivered.
  const delivered = await worker.read(500, 50);
  assert.equal(delivered.length, 500);
  await worker.ack(ids(delivered.slice(0, 400)));
  await worker.trimAcknowledged();

  const remaining = await streamIds(queue.key);
  assert.ok(remaining.length < 600, `acknowledged entries were trimmed (${remaining.length} left)`);
  const kept = new Set(remaining);
  for (const id of all.slice(400)) assert.ok(kept.has(id), `pending or undelivered entry ${id} kept`);
  // Trimming cuts only from the front: what remains is a contiguous tail.
  assert.deepEqual(remaining, all.slice(all.length - remaining.length));

  // The pending entries can still be taken over, the undelivered ones still read.
  const rescuer = await queue.consumer('rescuer');
  await sleep(120);
  assert.equal((await rescuer.claimAbandoned(100, 200)).length, 100);
  assert.deepEqual(
    ids(await worker.read(500, 50)),
    all.slice(500),
  );

  // With everything acknowledged, the queue shrinks to (about) nothing.
  await worker.ack(all.slice(400));
  await worker.trimAcknowledged();
  const finalLength = await redis.xLen(queue.key);
  assert.ok(finalLength < 200, `fully acknowledged queue trimmed to ${finalLength}`);
});

test('trimAcknowledged on a queue nobody read from keeps everything', async () => {
  const queue = await newQueue();
  const worker = await queue.consumer('worker');
  await enqueueMany(queue, 250);
  await worker.trimAcknowledged();
  assert.equal(await redis.xLen(queue.key), 250);
});

test('malformed entries are acknowledged and dropped, by read and by claimAbandoned', async () => {
  const queue = await newQueue();
  const worker = await queue.consumer('worker');
  const good = randomUUID();
  const malformed: Array<Record<string, string>> = [
    { x: good }, // no "t"
    { t: 'message_channel' }, // another Redis key as a token (the original's defect)
    { t: '6ba7b810-9dad-11d1-80b4-00c04fd430c8' }, // a UUID, but v1
    { t: good.toUpperCase() }, // not canonical lowercase
    { t: `${good} ` },
    { t: '' },
  ];
  for (const fields of malformed.slice(0, 3)) await redis.xAdd(queue.key, '*', fields);
  await enqueue(redis, queue.key, good);
  for (const fields of malformed.slice(3)) await redis.xAdd(queue.key, '*', fields);

  const entries = await worker.read(100, 50);
  assert.deepEqual(
    entries.map((entry) => entry.token),
    [good],
  );
  assert.deepEqual(
    (await queue.pending()).map((row) => row.id),
    ids(entries),
    'only the valid entry is pending',
  );

  // A dead consumer held malformed entries: the rescuer drops them rather than retrying forever.
  const second = randomUUID();
  await redis.xAdd(queue.key, '*', { t: 'not-a-token' });
  await enqueue(redis, queue.key, second);
  await redis.xReadGroup(queue.group, 'dead', { key: queue.key, id: '>' }, { COUNT: 10 });
  await worker.ack(ids(entries));
  assert.equal((await queue.pending()).length, 2);
  const rescuer = await queue.consumer('rescuer');
  await sleep(120);
  const claimed = await rescuer.claimAbandoned(100, 10);
  assert.deepEqual(
    claimed.map((entry) => entry.token),
    [second],
  );
  assert.deepEqual(
    (await queue.pending()).map((row) => row.id),
    ids(claimed),
  );
});

test('partition keys: one partition keeps the unpartitioned names; more carry hash tags of their own', () => {
  const prefix = 'parley:';
  const [single] = queuePartitions(prefix, 1);
  const keys = globalKeys(prefix);
  assert.deepEqual(single, { index: 0, queue: keys.queue, unanswered: keys.unanswered, cancelChannel: keys.cancelChannel });
  const partitions = queuePartitions(prefix, 8);
  assert.deepEqual(partitions[3], { index: 3, queue: 'parley:queue:{p3}', unanswered: 'parley:unanswered:{p3}', cancelChannel: 'parley:cancel:{p3}' });
  // The session key pattern (<prefix>{*}:*) must not match them.
  assert.ok(partitions.every((partition) => !partition.queue.startsWith(`${prefix}{`)));
  // A session always maps to the same partition, and sessions spread over all of them.
  const tokens = Array.from({ length: 400 }, () => randomUUID());
  assert.ok(tokens.every((token) => partitionOf(token, 8) === partitionOf(token, 8)));
  assert.equal(new Set(tokens.map((token) => partitionOf(token, 8))).size, 8);
});

test('a partitioned queue: blocking reads on every partition at once, acks, heartbeats and take-over per partition', async () => {
  const prefix = randomPrefix();
  prefixes.push(prefix);
  const partitions = queuePartitions(prefix, 3);
  const { group } = globalKeys(prefix);
  const consumer = async (name: string) => {
    const own = await Promise.all(
      partitions.map(async () => {
        const reader = redis.duplicate();
        await reader.connect();
        readers.push(reader);
        return reader;
      }),
    );
    const queue = new PartitionedQueue(redis, own, partitions, group, name);
    await queue.ensureGroups();
    return queue;
  };
  const dead = await consumer('dead');
  const rescuer = await consumer('rescuer');

  // All three block at once; an entry on the last partition wakes only its own read.
  const started = Date.now();
  const reads = partitions.map((partition) => dead.read(partition.index, 10, 1500));
  await sleep(100);
  const token = randomUUID();
  await enqueue(redis, partitions[2]?.queue ?? '', token);
  const third = await reads[2];
  assert.ok(Date.now() - started < 1200, 'the read of the busy partition woke at once');
  assert.deepEqual(
    third?.map((entry) => [entry.token, entry.partition]),
    [[token, 2]],
  );
  assert.deepEqual(await Promise.all(reads.slice(0, 2)), [[], []]);
  await dead.ack(third ?? []);

  // One entry per partition, read by the consumer that then dies.
  for (const partition of partitions) await enqueue(redis, partition.queue, randomUUID());
  const held = (await Promise.all(partitions.map((partition) => dead.read(partition.index, 10, 50)))).flat();
  assert.equal(held.length, 3);
  await sleep(150);
  await dead.heartbeat(held.slice(0, 1));
  const claimed = await rescuer.claimAbandoned(100, 10);
  assert.deepEqual(
    claimed.map((entry) => entry.id).sort(),
    held.slice(1).map((entry) => entry.id).sort(),
    'the renewed entry stays; the others are taken over from their own partitions',
  );
  await rescuer.ack(claimed);
  await dead.ack(held.slice(0, 1));
  for (const partition of partitions) assert.equal((await redis.xPending(partition.queue, group)).pending, 0, `partition ${partition.index} fully acknowledged`);
});

test('a sweep visits every old note in one round, batch after batch, whatever it keeps', async () => {
  const prefix = randomPrefix();
  prefixes.push(prefix);
  const key = globalKeys(prefix).unanswered;
  // Each finished session leaves a note: far more than one batch of them after a busy minute.
  const tokens: string[] = Array.from({ length: 450 }, () => randomUUID());
  for (const token of tokens) await markUnanswered(redis, key, token);
  const owned = new Set(tokens.filter((_, index) => index % 3 === 0));
  const visited: string[] = [];
  // Sessions still being answered keep their note; answered ones are forgotten.
  const visit = async (note: UnansweredNote) => {
    visited.push(note.token);
    return owned.has(note.token) ? false : forgetNote(redis, key, note);
  };
  assert.equal(await sweepUnanswered(redis, key, Date.now() + 1, 100, visit), tokens.length);
  assert.deepEqual([...visited].sort(), [...tokens].sort(), 'every note once');
  assert.deepEqual((await redis.zRange(key, 0, -1)).sort(), [...owned].sort(), 'only the kept ones remain');
  // Notes younger than the bound are not visited.
  await markUnanswered(redis, key, 'young');
  assert.equal(await sweepUnanswered(redis, key, Date.now() - 60_000, 100, visit), 0);
});
