/**
 * Fairness under a flood (issue 10): a model of fixed speed with two slots (WORKER_CONCURRENCY=2),
 * 20 ordinary users each behind an address of their own (X-Forwarded-For through TRUST_PROXY), and
 * 0, 1 or more flooding sessions from one address that keep MAX_PENDING_PER_SESSION messages
 * waiting at all times. The ordinary users' times to answer with and without the flood come from
 * one run, side by side, plus Jain's fairness index over the ordinary users.
 */
import type { BenchModelSettings } from '../bench-model.js';
import { BenchSocket, createSession, type TurnResult } from './client.js';
import type { PhaseContext } from './context.js';
import { sleep } from './processes.js';
import { startStack } from './stack.js';
import { round3, summarize, type Distribution } from './stats.js';

/** The flood keeps this many messages waiting per session (the default MAX_PENDING_PER_SESSION). */
const FLOOD_BACKLOG = 20;
const SLOTS = 2;
const ANSWER_TOKENS = 10;
const FLOOD_ADDRESS = '198.51.100.66';

export interface FairnessRun {
  readonly floodSessions: number;
  readonly ordinaryTurns: number;
  /** Ordinary users, send → answer done, ms (the model's own time included). */
  readonly answerMs: Distribution;
  /** Ordinary users, send → the answer's start, ms: the time spent waiting for a slot. */
  readonly waitMs: Distribution;
  /** Jain's index over the ordinary users' mean time to answer: 1 = every user fared the same. */
  readonly jain: number;
  readonly floodAnswers: number;
  readonly errors: Record<string, number>;
}

export interface FairnessResult {
  readonly users: number;
  readonly answerMsEach: number;
  readonly thinkMs: number;
  readonly durationS: number;
  readonly maxActivePerAddress: number;
  readonly runs: FairnessRun[];
  /** Flooded / calm p50 and p99 of the ordinary users' time to answer (largest flood). */
  readonly ratioP50: number | null;
  readonly ratioP99: number | null;
}

/** Jain's fairness index of non-negative values: (Σx)² / (n Σx²). */
export function jainIndex(values: readonly number[]): number {
  const sum = values.reduce((total, value) => total + value, 0);
  const squares = values.reduce((total, value) => total + value * value, 0);
  return values.length === 0 || squares === 0 ? 1 : round3((sum * sum) / (values.length * squares));
}

interface Flood {
  stop(): Promise<number>;
}

/** Sessions from one address that send a new message whenever one is answered. */
async function startFlood(baseUrl: string, sessions: number): Promise<Flood> {
  let running = true;
  let answers = 0;
  const loops = await Promise.all(
    Array.from({ length: sessions }, async (_, index) => {
      const socket = await BenchSocket.open(baseUrl, await createSession(baseUrl, `flood ${index}`), 'streaming', { headers: { 'X-Forwarded-For': FLOOD_ADDRESS } });
      const keepSending = async (): Promise<void> => {
        while (running) {
          const result = await socket.send(`flood ${index}`);
          if (!result.ok && result.error !== 'too_many_pending') return;
          answers += 1;
        }
      };
      return { socket, done: Promise.all(Array.from({ length: FLOOD_BACKLOG }, keepSending)) };
    }),
  );
  return {
    async stop() {
      running = false;
      for (const { socket } of loops) socket.close();
      await Promise.all(loops.map(({ done }) => done));
      return answers;
    },
  };
}

async function ordinaryUsers(ctx: PhaseContext, baseUrl: string, users: number, thinkMs: number, durationMs: number): Promise<TurnResult[][]> {
  const end = performance.now() + durationMs;
  return Promise.all(
    Array.from({ length: users }, async (_, index) => {
      const socket = await BenchSocket.open(baseUrl, await createSession(baseUrl, `user ${index}`), 'streaming', { headers: { 'X-Forwarded-For': `203.0.113.${index + 1}` } });
      const turns: TurnResult[] = [];
      // Staggered starts, then think times of 0.5–1.5 × thinkMs: arrivals spread, not in lockstep.
      await sleep(Math.random() * thinkMs);
      while (performance.now() < end && !ctx.signal.aborted) {
        turns.push(await socket.send(`user ${index} ${ctx.tag}`));
        await sleep(thinkMs * (0.5 + Math.random()));
      }
      socket.close();
      return turns;
    }),
  );
}

function summarizeRun(floodSessions: number, perUser: TurnResult[][], floodAnswers: number): FairnessRun {
  const turns = perUser.flat();
  const ok = turns.filter((turn) => turn.ok);
  const errors: Record<string, number> = {};
  for (const turn of turns) if (!turn.ok) errors[turn.error ?? 'error'] = (errors[turn.error ?? 'error'] ?? 0) + 1;
  const means = perUser
    .map((user) => user.filter((turn) => turn.ok).map((turn) => turn.doneAt - turn.sentAt))
    .filter((times) => times.length > 0)
    .map((times) => times.reduce((total, time) => total + time, 0) / times.length);
  return {
    floodSessions,
    ordinaryTurns: ok.length,
    answerMs: summarize(ok.map((turn) => turn.doneAt - turn.sentAt)),
    waitMs: summarize(ok.flatMap((turn) => (turn.startAt === undefined ? [] : [turn.startAt - turn.sentAt]))),
    jain: jainIndex(means),
    floodAnswers,
    errors,
  };
}

export async function runFairness(ctx: PhaseContext): Promise<FairnessResult> {
  const { options } = ctx;
  const rate = Math.round((ANSWER_TOKENS * 1000) / options.fairAnswerMs);
  const model: BenchModelSettings = { tokens: ANSWER_TOKENS, rate, recordYields: false };
  // One address may hold at most half the slots: the flood can never take the model whole.
  const maxActivePerAddress = SLOTS / 2;
  const stack = await startStack(ctx.group, {
    label: 'fairness',
    redis: ctx.redis,
    gateways: 1,
    workers: 1,
    keyPrefix: `${options.keyPrefix}fair:`,
    // The fixed-speed double in the worker: fairness is about the queue, not the HTTP path.
    modelPath: 'double',
    model,
    workerConcurrency: SLOTS,
    flushIntervalMs: options.flushIntervalMs,
    cpuProfDir: undefined,
    extraEnv: { TRUST_PROXY: 'true', MAX_ACTIVE_PER_ADDRESS: String(maxActivePerAddress) },
  });
  const runs: FairnessRun[] = [];
  try {
    const baseUrl = stack.gateways[0]?.url ?? '';
    for (const floodSessions of [0, ...options.floodSessions]) {
      ctx.log(`fairness: ${options.fairUsers} users, ${floodSessions} flooding session(s), ${options.fairDurationMs / 1000} s`);
      const flood = floodSessions === 0 ? undefined : await startFlood(baseUrl, floodSessions);
      // The flood's backlog is queued before the users arrive.
      if (flood !== undefined) await sleep(options.fairAnswerMs * 4);
      const perUser = await ordinaryUsers(ctx, baseUrl, options.fairUsers, options.fairThinkMs, options.fairDurationMs);
      runs.push(summarizeRun(floodSessions, perUser, (await flood?.stop()) ?? 0));
    }
  } finally {
    await stack.stop();
  }
  const calm = runs[0];
  const flooded = runs.at(-1);
  const ratio = (pick: (run: FairnessRun) => number) =>
    calm === undefined || flooded === undefined || flooded === calm || pick(calm) === 0 ? null : round3(pick(flooded) / pick(calm));
  return {
    users: options.fairUsers,
    answerMsEach: options.fairAnswerMs,
    thinkMs: options.fairThinkMs,
    durationS: options.fairDurationMs / 1000,
    maxActivePerAddress,
    runs,
    ratioP50: ratio((run) => run.answerMs.p50),
    ratioP99: ratio((run) => run.answerMs.p99),
  };
}
