/**
 * The fault suite: real gateways, workers and Redis as processes, conversations that keep
 * talking while one fault at a time strikes. For each: no accepted message lost, no answer
 * duplicated, out of order or with wrong text, and the service back by itself within a bound.
 * `npm test` runs a small size; `npm run test:faults` (FAULTS_SIZE=full) the full one.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { wordChunks, type FakeMessage } from '../support/fake-openai-server.js';
import { expectedAnswer, FULL_SIZE, runScenario, type ScenarioRow } from './support/scenario.js';
import { startStack, startTestRedis, type Stack, type TestRedis } from './support/stack.js';

const SESSIONS = FULL_SIZE ? 20 : 6;
const TURNS = FULL_SIZE ? 20 : 6;
/** The configured lease of the stack (LEASE_MS in stack.ts). */
const LEASE_MS = 1500;

function assertPromiseKept(row: ScenarioRow): void {
  assert.deepEqual(
    { lost: row.lost, duplicated: row.duplicated, outOfOrder: row.outOfOrder, wrongText: row.wrongText },
    { lost: 0, duplicated: 0, outOfOrder: 0, wrongText: 0 },
    `${row.scenario}: ${JSON.stringify(row)}`,
  );
}

/**
 * The model double's answer: the last message's text, which is unique per turn, so a wrong or
 * mixed-up answer shows. (Not the turn count: turns that failed are left out of later prompts.)
 */
const answerTo = (messages: readonly FakeMessage[]) => wordChunks(expectedAnswer(messages.filter((message) => message.role === 'user').at(-1)?.content ?? ''));

/** Streams its answer in a few chunks, so answers are in flight when faults strike. */
function streamingEcho(stack: Stack): void {
  stack.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: answerTo(messages), delayMs: 15 }));
}

async function withStack(options: { persistence?: 'none' | 'everysec' | 'always'; gateways?: number; workers?: number; env?: Record<string, string> }, run: (stack: Stack, redis: TestRedis) => Promise<void>): Promise<void> {
  const redis = await startTestRedis(options.persistence ?? 'none');
  const stack = await startStack({ redisUrl: redis.url, gateways: options.gateways ?? 2, workers: options.workers ?? 2, env: options.env ?? {} });
  try {
    streamingEcho(stack);
    await run(stack, redis);
  } finally {
    await stack.stop();
    await redis.stop();
  }
}

describe('fault suite', () => {
  test('worker SIGKILL storm: killed workers are replaced, their turns taken over', async () => {
    await withStack({}, async (stack) => {
      const kills = FULL_SIZE ? 10 : 2;
      const row = await runScenario({
        name: `worker SIGKILL ×${kills}`,
        gateways: () => stack.gatewayUrls(),
        sessions: SESSIONS,
        turnsPerSession: TURNS,
        fault: async () => {
          const interruptedAt = Date.now();
          for (let kill = 0; kill < kills; kill += 1) {
            const victim = stack.workers.filter((worker) => worker.alive())[kill % 2];
            await victim?.kill('SIGKILL');
            await stack.addWorker();
            await sleep(300);
          }
          return { healedAt: Date.now(), interruptedAt };
        },
      });
      assertPromiseKept(row);
    });
  });

  test('worker SIGSTOP for twice the lease, then SIGCONT', async () => {
    await withStack({}, async (stack) => {
      const row = await runScenario({
        name: `worker SIGSTOP ${2 * LEASE_MS} ms`,
        gateways: () => stack.gatewayUrls(),
        sessions: SESSIONS,
        turnsPerSession: TURNS,
        fault: async () => {
          const victim = stack.workers[0];
          victim?.signal('SIGSTOP');
          await sleep(2 * LEASE_MS);
          victim?.signal('SIGCONT');
          return { healedAt: Date.now() };
        },
      });
      assertPromiseKept(row);
    });
  });

  test('gateway SIGKILL and SIGTERM restarts: clients resume on the other gateway', async () => {
    await withStack({}, async (stack) => {
      const row = await runScenario({
        name: 'gateway SIGKILL + SIGTERM restarts',
        gateways: () => stack.gatewayUrls(),
        sessions: SESSIONS,
        turnsPerSession: TURNS,
        fault: async () => {
          await stack.gateways[0]?.kill('SIGKILL');
          await stack.restartGateway(0);
          await sleep(300);
          await stack.gateways[1]?.kill('SIGTERM');
          await stack.restartGateway(1);
          return { healedAt: Date.now() };
        },
      });
      assertPromiseKept(row);
    });
  });

  for (const persistence of ['always', 'everysec'] as const) {
    test(`Redis kill -9 and restart with AOF ${persistence}`, async () => {
      await withStack({ persistence }, async (stack, redis) => {
        const row = await runScenario({
          name: `Redis kill -9, AOF ${persistence}`,
          gateways: () => stack.gatewayUrls(),
          sessions: SESSIONS,
          turnsPerSession: TURNS,
          fault: async () => {
            await redis.crash();
            await sleep(500);
            await redis.restart();
            return { healedAt: Date.now() };
          },
        });
        assertPromiseKept(row);
      });
    });
  }

  test('Redis SIGSTOP for three times the lease, then SIGCONT', async () => {
    await withStack({}, async (stack, redis) => {
      const row = await runScenario({
        name: `Redis SIGSTOP ${3 * LEASE_MS} ms`,
        gateways: () => stack.gatewayUrls(),
        sessions: SESSIONS,
        turnsPerSession: TURNS,
        fault: async () => {
          redis.process.kill('SIGSTOP');
          await sleep(3 * LEASE_MS);
          redis.process.kill('SIGCONT');
          return { healedAt: Date.now() };
        },
      });
      assertPromiseKept(row);
    });
  });

  test('model server errors, cut streams and stalls: every turn ends, with its answer or an error', async () => {
    const env = { LLM_MAX_RETRIES: '1', LLM_FIRST_TOKEN_TIMEOUT_MS: '1000', LLM_IDLE_TIMEOUT_MS: '1000' };
    await withStack({ env }, async (stack) => {
      const row = await runScenario({
        name: 'model 503s, cuts and stalls',
        gateways: () => stack.gatewayUrls(),
        sessions: SESSIONS,
        turnsPerSession: TURNS,
        fault: async () => {
          stack.model.setRespond(({ messages, index }) => {
            const chunks = answerTo(messages);
            if (index % 4 === 0) return { kind: 'error', status: 503, body: { error: { message: 'Model is loading' } } };
            if (index % 4 === 1) return { kind: 'stream', chunks, delayMs: 15, cutAfter: 1 };
            if (index % 8 === 2) return { kind: 'hang' };
            return { kind: 'stream', chunks, delayMs: 15 };
          });
          await sleep(FULL_SIZE ? 10_000 : 3000);
          streamingEcho(stack);
          return { healedAt: Date.now() };
        },
      });
      assertPromiseKept(row);
      assert.ok(row.answered + row.errors === row.turns, 'every turn ended with an answer or an error');
    });
  });
});
