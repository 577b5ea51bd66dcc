/**
 * Conversations per person (issue 13): Redis memory per conversation and the time to list and
 * search a person's 1,000 conversations over real HTTP.
 *
 *   node --import tsx bench/conversations.ts [--conversations 1000] [--turns 20] [--question-chars 200]
 *        [--answer-chars 800] [--repeats 30] [--redis redis://127.0.0.1:6379]
 *
 * Starts one gateway in this process on the given Redis (under a random key prefix it deletes at
 * the end), signs a person up, creates the conversations through POST /api/v1/conversations and
 * fills each with `turns` turns through the very scripts the gateway and the worker run (accept,
 * startTurn, appendDelta, finishTurn; no model, so the filling takes seconds, not hours). Memory is
 * MEMORY USAGE (SAMPLES 0: exact) over each conversation's keys, averaged: while it is in use
 * (its event stream and dedupe hash still there) and at rest (after they expired). Times are the
 * median of `repeats` requests, one after the other, with a bearer account token.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { loadConfig } from '../src/config/config.js';
import { sessionKeys, conversationIndexKeys, queuePartitions } from '../src/contracts/keys.js';
import { startGateway } from '../src/gateway/server.js';
import { createLogger } from '../src/shared/logger.js';
import { AnswerStore } from '../src/store/answer-store.js';
import { createRedisClient } from '../src/store/redis.js';
import { SessionStore } from '../src/store/session-store.js';
import { median, round3 } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '1000' },
    turns: { type: 'string', default: '20' },
    'question-chars': { type: 'string', default: '200' },
    'answer-chars': { type: 'string', default: '800' },
    repeats: { type: 'string', default: '30' },
    redis: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const count = Number(values.conversations);
const turns = Number(values.turns);
const questionChars = Number(values['question-chars']);
const answerChars = Number(values['answer-chars']);
const repeats = Number(values.repeats);
const prefix = `pbench:${randomBytes(4).toString('hex')}:`;

/** Text of about `chars` characters, words of plain English letters (what most chats hold). */
function prose(chars: number, seed: number): string {
  const words = ['the', 'model', 'answer', 'question', 'redis', 'stream', 'because', 'which', 'people', 'conversation', 'often', 'about'];
  let text = '';
  for (let n = seed; text.length < chars; n += 7) text += `${words[n % words.length]} `;
  return text.slice(0, chars).trimEnd();
}

async function timeMs(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

async function main(): Promise<void> {
  const env = { REDIS_URL: values.redis, KEY_PREFIX: prefix, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', LLM_PROVIDER: 'none', RATE_SESSIONS_PER_MINUTE: '0', RATE_SIGNUPS_PER_MINUTE: '0' };
  const config = loadConfig(env);
  const gateway = await startGateway(config, createLogger('bench', 'silent', 'json'));
  const redis = createRedisClient(config.redis);
  await redis.connect();
  const raw = createClient({ url: values.redis });
  await raw.connect();
  try {
    const call = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${gateway.url}${path}`, init);
      const body = (await response.json()) as Record<string, unknown>;
      if (response.status >= 300) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(body)}`);
      return body;
    };
    const signup = await fetch(`${gateway.url}/api/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bench', password: 'correct horse battery' }) });
    const authCookie = signup.headers.getSetCookie()[0]?.split(';')[0] ?? '';
    const { person, csrf } = (await signup.json()) as { person: { id: string }; csrf: string };
    const accountId = person.id;
    // Programs use an account token; so does this.
    const tokenBody = await call('/api/v1/auth/tokens', { method: 'POST', headers: { cookie: authCookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: '{}' });
    const auth = { authorization: `Bearer ${String(tokenBody.token)}` };

    const sessions = new SessionStore(redis, { prefix, sessionTtlSeconds: config.sessionTtlSeconds, eventsMaxLen: config.eventsMaxLen, maxPendingPerSession: config.maxPendingPerSession, historyMaxRecords: config.historyMaxRecords, refreshMaxMessages: config.refreshMaxMessages });
    const answers = new AnswerStore(redis, { prefix, sessionTtlSeconds: config.sessionTtlSeconds, eventsMaxLen: config.eventsMaxLen, leaseMs: config.leaseMs, historyRecords: 200 });
    const [partition] = queuePartitions(prefix, 1);
    if (partition === undefined) throw new Error('no queue partition');
    const wake = { queueKey: partition.queue, unansweredKey: partition.unanswered, inScript: true };

    const started = performance.now();
    const ids: string[] = [];
    for (let n = 0; n < count; n += 1) {
      const created = await call('/api/v1/conversations', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ title: `Conversation ${n}` }) });
      const id = String(created.id);
      ids.push(id);
      for (let turn = 1; turn <= turns; turn += 1) {
        await sessions.accept(id, prose(questionChars, n + turn), `c${turn}`, wake, '127.0.0.1');
        await answers.acquireLease(id, 'bench');
        const start = await answers.startTurn(id, 'bench');
        if (start.status !== 'ok') throw new Error(`turn ${turn} of ${id}: ${start.status}`);
        const text = prose(answerChars, n * turn);
        // An answer streams in batches (FLUSH_MAX_CHARS each at most); four is typical for 800 characters.
        const batches = 4;
        const size = Math.ceil(text.length / batches);
        for (let b = 0; b < batches - 1; b += 1) await answers.appendDelta(id, 'bench', turn, text.slice(b * size, (b + 1) * size));
        await answers.finishTurn(id, 'bench', turn, { kind: 'answer', text, stopped: false }, text.slice((batches - 1) * size));
      }
      await answers.startTurn(id, 'bench'); // idle: releases the lease, as a worker does
    }
    const fillSeconds = (performance.now() - started) / 1000;
    await raw.del([partition.queue, partition.unanswered]);

    const sample = ids.slice(0, Math.min(100, ids.length));
    const usage = async (key: string) => (await raw.memoryUsage(key, { SAMPLES: 0 })) ?? 0;
    const index = conversationIndexKeys(prefix, accountId);
    const indexShare = ((await usage(index.index)) + (await usage(index.titles))) / count;
    let inUse = 0;
    let atRest = 0;
    for (const id of sample) {
      const keys = sessionKeys(prefix, id);
      const kept = (await usage(keys.session)) + (await usage(keys.messages)) + (await usage(keys.errors));
      atRest += kept;
      inUse += kept + (await usage(keys.events)) + (await usage(keys.dedupe));
    }
    const textBytes = turns * (questionChars + answerChars);

    const time = async (path: string) => {
      const samples: number[] = [];
      for (let n = 0; n < repeats; n += 1) samples.push(await timeMs(() => call(path, { headers: auth })));
      return round3(median(samples));
    };
    const walkAll = async () => {
      let before: string | undefined;
      let seen = 0;
      for (;;) {
        const page = await call(`/api/v1/conversations?limit=200${before === undefined ? '' : `&before=${encodeURIComponent(before)}`}`, { headers: auth });
        seen += (page.conversations as unknown[]).length;
        if (typeof page.next !== 'string') return seen;
        before = page.next;
      }
    };
    const walked: number[] = [];
    for (let n = 0; n < Math.max(5, Math.round(repeats / 3)); n += 1) {
      walked.push(await timeMs(async () => {
        if ((await walkAll()) !== count) throw new Error('the walk did not see every conversation');
      }));
    }
    const report = {
      conversations: count,
      turnsEach: turns,
      charsPerTurn: questionChars + answerChars,
      fillSeconds: round3(fillSeconds),
      memoryBytesPerConversation: {
        inUse: Math.round(inUse / sample.length + indexShare),
        atRest: Math.round(atRest / sample.length + indexShare),
        indexShare: Math.round(indexShare),
        textBytes,
      },
      medianMs: {
        firstPage50: await time('/api/v1/conversations'),
        page200: await time('/api/v1/conversations?limit=200'),
        allPagesOf200: round3(median(walked)),
        searchNoMatch: await time('/api/v1/conversations?q=zzzz-nowhere'),
        searchTitle: await time(`/api/v1/conversations?q=${encodeURIComponent(`Conversation ${count - 1}`)}`),
      },
      redis: (await raw.info('server')).match(/redis_version:(\S+)/)?.[1],
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    for await (const keys of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length > 0) await raw.unlink(keys);
    raw.destroy();
    redis.destroy();
    await gateway.stop();
  }
}

await main();
