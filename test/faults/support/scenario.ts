/**
 * Runs one fault scenario: conversations that keep talking while the fault is injected, then
 * the counts that Parley promises are zero (lost, duplicated, out of order, wrong text) and how
 * long the service took to recover. Each result is printed as a `# fault …` line and appended to
 * test-results/faults.jsonl, from which `npm run test:faults` prints its table.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { Conversation, type ConversationReport } from './conversation.js';

export const FULL_SIZE = process.env.FAULTS_SIZE === 'full';

export interface FaultTiming {
  /** When the fault was over (the process restarted, Redis continued...). */
  readonly healedAt: number;
  /** For takeovers: when the work was interrupted (the kill), to measure takeover times. */
  readonly interruptedAt?: number;
}

export interface ScenarioOptions {
  readonly name: string;
  readonly gateways: () => string[];
  readonly sessions: number;
  readonly turnsPerSession: number;
  /** Injects the fault once the conversations are under way; resolves when it has healed. */
  readonly fault: () => Promise<FaultTiming>;
  /** Longest a turn may take before it counts as lost. */
  readonly answerTimeoutMs?: number;
}

export interface ScenarioRow {
  readonly scenario: string;
  readonly turns: number;
  readonly answered: number;
  readonly errors: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  readonly wrongText: number;
  /** From the fault's end until every turn in flight then had ended. */
  readonly recoverMs: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly maxLatencyMs: number;
  readonly reconnects: number;
  readonly wrongAnswers: string[];
}

/** What the fault suite's model double answers to a message. */
export const expectedAnswer = (text: string) => `You said: ${text}. Over.`;
const expected = (_seq: number, text: string) => expectedAnswer(text);

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function createSession(gateways: () => string[]): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const url = gateways()[attempt % gateways().length] ?? '';
    try {
      const response = await fetch(`${url}/token?name=fault`, { method: 'POST' });
      if (response.ok) return ((await response.json()) as { token: string }).token;
    } catch {
      // that gateway is down: try the next one
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('no gateway would create a session');
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioRow> {
  const timeoutMs = options.answerTimeoutMs ?? 30_000;
  const conversations = await Promise.all(
    Array.from({ length: options.sessions }, async (_, index) => {
      const conversation = new Conversation(await createSession(options.gateways), options.gateways, index, expected);
      await conversation.open();
      return conversation;
    }),
  );
  const ends: Array<{ sentAt: number; endedAt: number | undefined }> = [];
  let turnsDone = 0;
  const talk = async (conversation: Conversation, index: number) => {
    for (let turn = 0; turn < options.turnsPerSession; turn += 1) {
      const sentAt = Date.now();
      const ok = await conversation.ask(`session ${index} turn ${turn}`, timeoutMs);
      ends.push({ sentAt, endedAt: ok ? Date.now() : undefined });
      turnsDone += 1;
    }
  };
  const talking = Promise.all(conversations.map(talk));
  // The fault strikes once a fifth of the turns are done: answers are in flight everywhere.
  const total = options.sessions * options.turnsPerSession;
  while (turnsDone < total / 5) await new Promise((resolve) => setTimeout(resolve, 20));
  const timing = await options.fault();
  await talking;
  for (const conversation of conversations) conversation.close();

  const reports: ConversationReport[] = conversations.map((conversation) => conversation.report());
  const sum = (pick: (report: ConversationReport) => number) => reports.reduce((total, report) => total + pick(report), 0);
  const latencies = reports.flatMap((report) => report.latencies).sort((a, b) => a - b);
  const inFlightAtHeal = ends.filter((end) => end.sentAt <= timing.healedAt && end.endedAt !== undefined && end.endedAt >= timing.healedAt);
  const row: ScenarioRow = {
    scenario: options.name,
    turns: sum((report) => report.sent),
    answered: sum((report) => report.answered),
    errors: sum((report) => report.errored),
    lost: sum((report) => report.lost),
    duplicated: sum((report) => report.duplicated),
    outOfOrder: sum((report) => report.outOfOrder),
    wrongText: sum((report) => report.wrongText),
    recoverMs: Math.max(0, ...inFlightAtHeal.map((end) => (end.endedAt ?? 0) - timing.healedAt)),
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    maxLatencyMs: latencies.at(-1) ?? 0,
    reconnects: conversations.reduce((total, conversation) => total + conversation.reconnections, 0),
    wrongAnswers: conversations.flatMap((conversation) => conversation.wrongAnswers()).slice(0, 5),
  };
  record(row);
  return row;
}

function record(row: ScenarioRow): void {
  const { wrongAnswers: _omitted, ...figures } = row;
  console.log(`# fault ${JSON.stringify(figures)}`);
  mkdirSync('test-results', { recursive: true });
  appendFileSync('test-results/faults.jsonl', `${JSON.stringify({ ...figures, size: FULL_SIZE ? 'full' : 'small', at: new Date().toISOString() })}\n`);
}
