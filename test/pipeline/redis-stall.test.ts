/**
 * While the gateway's Redis does not answer (stalled, partitioned), nobody is left waiting in
 * silence: /healthz says 503 within about a second, the HTTP API answers 503, and streaming
 * clients get a `degraded` status frame, then `ok` once Redis answers again. Nothing is lost: a
 * message sent during the stall is answered afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSession, TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

let system: TestSystem;
let proxy: TcpProxy;
let gateway: string;

before(async () => {
  proxy = await startTcpProxy();
  system = await startSystem();
  gateway = await system.addGateway({ REDIS_URL: proxy.url });
});
after(async () => {
  proxy.resume();
  await system.stop();
  await proxy.close();
});

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

test('during a Redis stall: health 503, API 503, a degraded status frame; then recovery, and nothing lost', async () => {
  const session = await createSession(gateway);
  const socket = await TestSocket.open(gateway, session.token);
  assert.equal((await fetch(`${gateway}/healthz`)).status, 200);

  proxy.pause();
  try {
    const health = await timed(() => fetch(`${gateway}/healthz`));
    assert.equal(health.value.status, 503);
    assert.ok(health.ms < 5000, `healthz answered in ${health.ms} ms`);
    const token = await timed(() => fetch(`${gateway}/token?name=Ada`, { method: 'POST' }));
    assert.equal(token.value.status, 503);
    assert.ok(token.value.headers.get('retry-after') !== null, 'Retry-After is set');
    assert.match(String(((await token.value.json()) as { detail?: unknown }).detail), /temporarily unavailable/);
    await socket.waitFor((frame) => frame.type === 'status' && frame.state === 'degraded', 10_000);
    socket.send({ type: 'message', text: 'sent during the stall' });
  } finally {
    proxy.resume();
  }

  await socket.waitFor((frame) => frame.type === 'status' && frame.state === 'ok', 10_000);
  await socket.waitFor((frame) => frame.type === 'done', 15_000);
  assert.equal(socket.answers().get(1), 'Echo #1: sent during the stall');
  assert.equal((await fetch(`${gateway}/healthz`)).status, 200);
  socket.close();
});
