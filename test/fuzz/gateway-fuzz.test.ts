/**
 * Fuzz suite (issue 9): random and malformed raw HTTP requests, upgrade requests and frames in
 * both modes against a gateway process, while a well-behaved client keeps chatting. Asserts the
 * gateway stays up, nothing gets a 5xx, a close 1011 or an internal_error frame, the client always
 * gets its correct answer, and no token reaches the gateway's output.
 *
 * Seeded: FUZZ_SEED (default 9) reproduces a run; FUZZ_SIZE rounds (default 40 here, in `npm test`;
 * `npm run test:fuzz` runs 2000). Prints the counts to quote.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createSession, TestSocket } from '../support/client.js';
import { fuzzGateway } from '../support/fuzz.js';
import { startSystem, type TestSystem } from '../support/system.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SEED = Number(process.env.FUZZ_SEED ?? 9);
const SIZE = Number(process.env.FUZZ_SIZE ?? 40);
const TURNS_PER_SESSION = 20;

let system: TestSystem;
let gateway: ChildProcess;
let output = '';
let crashes = 0;
let port = 0;

before(async () => {
  system = await startSystem({ gateways: 0, env: { MAX_PENDING_PER_SESSION: '50' } });
  gateway = spawn(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...system.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gateway.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  gateway.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  gateway.on('exit', () => (crashes += 1));
  port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${output}`)), 30_000);
    gateway.stdout?.on('data', () => {
      const match = /"url":"http:\/\/[^"]*:(\d+)"/.exec(output);
      if (match === null) return;
      clearTimeout(timer);
      resolve(Number(match[1]));
    });
  });
});
after(async () => {
  gateway.removeAllListeners('exit');
  gateway.kill('SIGKILL');
  await system.stop();
});

test(`fuzz: seed ${SEED}, ${SIZE} rounds — the gateway stays up and refuses every bad input cleanly`, async () => {
  const baseUrl = `http://127.0.0.1:${port}`;
  const tokens: string[] = [];
  const newToken = async () => {
    const { token } = await createSession(baseUrl, 'fuzz');
    tokens.push(token);
    return token;
  };
  let client = await TestSocket.open(baseUrl, await newToken());
  let turn = 0;
  const wellBehaved = async (round: number) => {
    // A fresh session now and then: the echo model counts the turns in its prompt, and a long
    // history is cut to LLM_HISTORY_TOKENS.
    if (turn === TURNS_PER_SESSION) {
      client.close();
      client = await TestSocket.open(baseUrl, await newToken());
      turn = 0;
    }
    turn += 1;
    const text = `still answering at round ${round}`;
    client.send({ type: 'message', text });
    await client.waitFor((frame) => frame.type === 'done' && frame.seq === turn, 20_000);
    assert.equal(client.answers().get(turn), `Echo #${turn}: ${text}`);
  };
  const started = Date.now();
  const counts = await fuzzGateway({ port, newToken }, { seed: SEED, size: SIZE, maxFrameBytes: system.config.wsMaxFrameBytes, wellBehaved });
  client.close();
  const lastResort = (output.match(/uncaught exception|unhandled rejection/g) ?? []).length;
  const health = await fetch(`${baseUrl}/healthz`);
  const report = { seed: SEED, size: SIZE, seconds: Math.round((Date.now() - started) / 100) / 10, ...counts, crashes, lastResortHandlerHits: lastResort };
  console.log(`FUZZ ${JSON.stringify(report, null, 1)}`);

  assert.equal(crashes, 0, `the gateway process exited:\n${output.slice(-3000)}`);
  assert.equal(lastResort, 0, `no input reached the last-resort handler:\n${output.slice(-3000)}`);
  assert.equal(health.status, 200);
  assert.deepEqual(counts.violations, []);
  for (const token of tokens) assert.ok(!output.includes(token), 'no token in the gateway output');
});
