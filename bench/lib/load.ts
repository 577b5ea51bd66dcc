/**
 * Load generators. Closed loop: each client sends one message, waits for its answer, sends the
 * next (throughput at saturation). Open loop: messages leave on a fixed schedule whatever the
 * answers do (latency at a given offered load, free of coordinated omission: a slow answer does
 * not delay the next send). Both roll each client over to a new session every
 * `turnsPerSession` turns, so history, and with it the work per turn, stays that of a normal
 * conversation instead of growing with the length of the run.
 */
import { BenchSocket, createSession, mapLimit, type Mode, type TurnResult } from './client.js';
import { sleep } from './processes.js';

export interface TurnSample extends TurnResult {
  /** Open loop: how late the send left against its schedule (ms). */
  readonly lagMs: number;
  /** Closed loop: the turn's number in its session (1 = first); open loop: 0. */
  readonly turnInSession: number;
}

export interface LoadOutcome {
  readonly samples: TurnSample[];
  /** performance.now() bounds of the measurement window (after warm-up). */
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly sent: number;
  readonly sessions: string[];
  readonly errors: Record<string, number>;
}

export interface CommonLoad {
  readonly urls: readonly string[];
  readonly mode: Mode;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** New session after this many turns; 0 keeps one session per client for the whole run. */
  readonly turnsPerSession: number;
  readonly recordDeltas?: boolean;
  readonly turnTimeoutMs: number;
  /** Makes every message text unique (the model double keys its yield log by it). */
  readonly tag: string;
  readonly signal: AbortSignal;
}

export interface ClosedLoad extends CommonLoad {
  readonly clients: number;
  /** Stop each client after this many turns (e.g. exactly one 20-turn session each). */
  readonly turnsPerClient?: number;
  /** Stop after this many turns in all (sends stop; answers in flight still count). */
  readonly maxTurns?: number;
}

export interface OpenLoad extends CommonLoad {
  readonly ratePerSec: number;
}

function countError(errors: Record<string, number>, code: string | undefined): void {
  const key = code ?? 'unknown';
  errors[key] = (errors[key] ?? 0) + 1;
}

/** Resolves with the turn's result, or a "timeout" failure (and closes the socket) after timeoutMs. */
async function sendWithTimeout(socket: BenchSocket, text: string, timeoutMs: number): Promise<TurnResult> {
  let timer: NodeJS.Timeout | undefined;
  const sentAt = performance.now();
  const timeout = new Promise<TurnResult>((resolve) => {
    timer = setTimeout(() => {
      socket.close();
      resolve({ text, ok: false, error: 'timeout', sentAt, doneAt: performance.now(), chars: 0, deltaFrames: 0, deltas: undefined, acceptedAt: undefined, startAt: undefined, answer: undefined });
    }, timeoutMs);
  });
  const result = await Promise.race([socket.send(text), timeout]);
  clearTimeout(timer);
  return result;
}

async function openSession(url: string, mode: Mode, recordDeltas: boolean, sessions: string[]): Promise<BenchSocket> {
  const token = await createSession(url);
  sessions.push(token);
  return BenchSocket.open(url, token, mode, { recordDeltas });
}

export async function closedLoop(load: ClosedLoad): Promise<LoadOutcome> {
  const samples: TurnSample[] = [];
  const errors: Record<string, number> = {};
  const sessions: string[] = [];
  const start = performance.now();
  const windowStart = start + load.warmupMs;
  const windowEnd = windowStart + load.durationMs;
  let sent = 0;
  const mayContinue = () => !load.signal.aborted && performance.now() < windowEnd && (load.maxTurns === undefined || sent < load.maxTurns);

  const client = async (index: number): Promise<void> => {
    const url = load.urls[index % load.urls.length] ?? '';
    let socket: BenchSocket | undefined;
    let onSession = 0;
    let mine = 0;
    while (mayContinue() && (load.turnsPerClient === undefined || mine < load.turnsPerClient)) {
      if (socket === undefined || !socket.isOpen || (load.turnsPerSession > 0 && onSession >= load.turnsPerSession)) {
        socket?.close();
        socket = await openSession(url, load.mode, load.recordDeltas === true, sessions).catch((error: unknown) => {
          countError(errors, `open: ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        });
        onSession = 0;
        if (socket === undefined) {
          await sleep(200);
          continue;
        }
      }
      sent += 1;
      mine += 1;
      onSession += 1;
      const result = await sendWithTimeout(socket, `bench ${load.tag} c${index} t${mine}`, load.turnTimeoutMs);
      samples.push({ ...result, lagMs: 0, turnInSession: onSession });
      if (!result.ok) countError(errors, result.error);
    }
    socket?.close();
  };

  await Promise.all(Array.from({ length: load.clients }, (_, index) => client(index)));
  return { samples, windowStart, windowEnd, sent, sessions, errors };
}

/**
 * Sends `ratePerSec` messages per second for warm-up + duration. Sessions are opened before the
 * clock starts (so opening them is not part of the latency) and used round-robin in groups of
 * `width`, each session of a group getting one message every width/rate seconds until it has had
 * `turnsPerSession`; then the next group takes over.
 */
export async function openLoop(load: OpenLoad): Promise<LoadOutcome> {
  const total = Math.max(1, Math.round((load.ratePerSec * (load.warmupMs + load.durationMs)) / 1000));
  const perSession = load.turnsPerSession > 0 ? load.turnsPerSession : total;
  const width = Math.max(1, Math.min(200, Math.round(load.ratePerSec / 10)));
  const sessionCount = Math.min(total, Math.ceil(total / (width * perSession)) * width);
  const sessions: string[] = [];
  const errors: Record<string, number> = {};
  const sockets = await mapLimit(Array.from({ length: sessionCount }, (_, index) => index), 32, (index) =>
    openSession(load.urls[index % load.urls.length] ?? '', load.mode, load.recordDeltas === true, sessions),
  );
  const samples: TurnSample[] = [];
  const inFlight: Array<Promise<void>> = [];
  const intervalMs = 1000 / load.ratePerSec;
  const start = performance.now();
  let sent = 0;
  while (sent < total && !load.signal.aborted) {
    const due = start + sent * intervalMs;
    const wait = due - performance.now();
    // Always yield: spinning until a sub-millisecond deadline would starve the sockets' I/O.
    if (wait >= 1) await sleep(wait);
    else await new Promise<void>((resolve) => setImmediate(resolve));
    // Everything that has come due leaves now, even when the timer woke late.
    while (sent < total && start + sent * intervalMs <= performance.now()) {
      const group = Math.floor(sent / (width * perSession));
      const socket = sockets[group * width + (sent % width)] ?? sockets[sent % sockets.length];
      const scheduled = start + sent * intervalMs;
      sent += 1;
      if (socket === undefined) continue;
      inFlight.push(
        sendWithTimeout(socket, `bench ${load.tag} o${sent}`, load.turnTimeoutMs).then((result) => {
          samples.push({ ...result, lagMs: result.sentAt - scheduled, turnInSession: 0 });
          if (!result.ok) countError(errors, result.error);
        }),
      );
    }
  }
  await Promise.all(inFlight);
  for (const socket of sockets) socket.close();
  return { samples, windowStart: start + load.warmupMs, windowEnd: start + load.warmupMs + load.durationMs, sent, sessions, errors };
}

/** Samples whose message was sent inside the measurement window. */
export function sentInWindow(outcome: LoadOutcome): TurnSample[] {
  return outcome.samples.filter((sample) => sample.sentAt >= outcome.windowStart && sample.sentAt < outcome.windowEnd);
}

/** Successful turns that finished inside the measurement window. */
export function doneInWindow(outcome: LoadOutcome): TurnSample[] {
  return outcome.samples.filter((sample) => sample.ok && sample.doneAt >= outcome.windowStart && sample.doneAt < outcome.windowEnd);
}
