/**
 * What an attacker on the internet can do to a gateway: crash it with a bad upgrade URL (finding
 * 1), open a chat socket from any site (3), read /metrics (4), get cacheable tokens and wrong
 * security headers (5), send frames far larger than a message or faster than the gateway works
 * (6). Each test reproduces a finding on the code before the fix; see docs/security.md.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/config.js';
import { startGateway, type GatewayHandle } from '../../src/gateway/server.js';
import { createLogger } from '../../src/shared/logger.js';
import { createSession, TestSocket } from '../support/client.js';
import { LogCapture } from '../support/log-capture.js';
import { rawRequest, upgradeRequest } from '../support/raw-http.js';
import { startSystem, type TestSystem } from '../support/system.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALLOWED_ORIGIN = 'https://chat.example.org';
const METRICS_TOKEN = 'a-long-metrics-secret-0123456789';
const BAD_TARGETS = ['//x:abc/', '//[', '//:99999', '//%00', '//x:abc/chat?token=', '//[::1/chat', '/chat/..%2f', '*'];

let system: TestSystem;
const logs = new LogCapture();
let port: number;

before(async () => {
  system = await startSystem({ env: { CORS_ORIGINS: ALLOWED_ORIGIN, MESSAGE_MAX_CHARS: '1000', LOG_LEVEL: 'info', METRICS_TOKEN }, logDestination: logs });
  port = Number(new URL(system.baseUrl).port);
});
after(async () => {
  await system.stop();
});

async function assertServing(): Promise<void> {
  const response = await fetch(`${system.baseUrl}/healthz`);
  assert.equal(response.status, 200, 'the gateway still answers');
}

/** Opens /chat with these options; resolves with the HTTP status of the handshake (101 when upgraded). */
async function handshake(token: string, options: { origin?: string; protocols?: string[]; query?: boolean } = {}): Promise<{ status: number; ws?: WebSocket }> {
  const url = `${system.baseUrl.replace(/^http/, 'ws')}/chat${options.query === false ? '' : `?token=${token}`}`;
  const ws = new WebSocket(url, options.protocols ?? [], options.origin === undefined ? {} : { origin: options.origin });
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', () => resolve({ status: 0 }));
  });
}

describe('finding 1: a bad upgrade request never ends the process', () => {
  test('upgrade requests with URLs that `new URL` rejects get a 4xx; the gateway keeps serving', async () => {
    for (const target of BAD_TARGETS) {
      for (const upgrade of ['websocket', 'h2c']) {
        const reply = await rawRequest(port, upgradeRequest(target, {}, upgrade));
        assert.ok(reply.status !== undefined && reply.status >= 400 && reply.status < 500, `${upgrade} ${target}: ${JSON.stringify(reply.text.slice(0, 80))}`);
        await assertServing();
      }
    }
  });

  test('a gateway process survives them and logs neither the URL nor the token', async () => {
    const token = '0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f';
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/gateway/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, ...system.env, PORT: '0', LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    try {
      const childPort = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', () => {
          const match = /"url":"http:\/\/[^"]*:(\d+)"/.exec(output);
          if (match !== null) resolve(Number(match[1]));
        });
        child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${output}`)));
      });
      for (const target of BAD_TARGETS) await rawRequest(childPort, upgradeRequest(`${target}?token=${token}`));
      const health = await fetch(`http://127.0.0.1:${childPort}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(child.exitCode, null, `the gateway is still running: ${output}`);
      assert.ok(!output.includes(token), `the token never appears in the output:\n${output}`);
      assert.ok(!output.includes('x:abc'), `the URL never appears in the output:\n${output}`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('no token or message text appears in any log line of the in-process gateway', async () => {
    const session = await createSession(system.baseUrl);
    const socket = await TestSocket.open(system.baseUrl, session.token);
    socket.send({ type: 'message', text: 'a secret message text' });
    await socket.waitFor((frame) => frame.type === 'done');
    await rawRequest(port, upgradeRequest(`//x:abc/?token=${session.token}`));
    socket.close();
    assert.ok(!logs.text().includes(session.token), 'no full token in the logs');
    assert.ok(!logs.text().includes('a secret message text'), 'no message text in the logs');
  });
});

describe('finding 3: only allowed origins may open a chat socket', () => {
  test('another site and Origin: null get 403 before the upgrade', async () => {
    const session = await createSession(system.baseUrl);
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1.evil.example:${port}`, 'https://chat.example.org.evil.example']) {
      const { status } = await handshake(session.token, { origin });
      assert.equal(status, 403, origin);
    }
    await assertServing();
  });

  test('same origin, a listed origin and no Origin at all are accepted', async () => {
    const session = await createSession(system.baseUrl);
    for (const origin of [system.baseUrl, ALLOWED_ORIGIN, undefined]) {
      const { status, ws } = await handshake(session.token, origin === undefined ? {} : { origin });
      assert.equal(status, 101, String(origin));
      ws?.close();
    }
  });

  test('behind a trusted proxy, same origin means the forwarded scheme and host', async () => {
    const gateway = await startGateway(loadConfig({ ...system.env, TRUST_PROXY: 'true' }), createLogger('test', 'silent'));
    try {
      const session = await createSession(gateway.url);
      const proxied = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'chat.example.net' };
      const statusOf = async (origin: string) => (await rawRequest(gateway.port, upgradeRequest(`/chat?token=${session.token}`, { ...proxied, Origin: origin }))).status;
      assert.equal(await statusOf('https://chat.example.net'), 101);
      assert.equal(await statusOf('http://chat.example.net'), 403, 'the browser saw https, not http');
      assert.equal(await statusOf('https://other.example.net'), 403);
    } finally {
      await gateway.stop();
    }
  });

  test('a refused origin is logged once, with a hint naming CORS_ORIGINS', async () => {
    const session = await createSession(system.baseUrl);
    for (let attempt = 0; attempt < 3; attempt += 1) await handshake(session.token, { origin: 'http://logged-once.example' });
    const lines = logs.entries().filter((line) => String(line.origin ?? '') === 'http://logged-once.example');
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.match(String(lines[0]?.msg), /CORS_ORIGINS/);
  });
});

describe('finding 4: metrics are not public', () => {
  test('/metrics on the user port is 404 by default', async () => {
    const { METRICS_TOKEN: _unused, ...env } = system.env;
    const gateway = await startGateway(loadConfig(env), createLogger('test', 'silent'));
    try {
      assert.equal((await fetch(`${gateway.url}/metrics`)).status, 404);
      assert.equal(gateway.metricsUrl, undefined);
    } finally {
      await gateway.stop();
    }
  });

  test('METRICS_PORT serves them on a separate listener; METRICS_TOKEN guards them on the public port', async () => {
    const config = loadConfig({ ...system.env, METRICS_PORT: '0' });
    const gateway: GatewayHandle = await startGateway(config, createLogger('test', 'silent'));
    try {
      assert.ok(gateway.metricsUrl !== undefined);
      const privateMetrics = await fetch(`${gateway.metricsUrl}/metrics`);
      assert.equal(privateMetrics.status, 200);
      assert.match(await privateMetrics.text(), /parley_gateway_sockets/);
      assert.equal((await fetch(`${gateway.metricsUrl}/readyz`)).status, 200);
      assert.equal((await fetch(`${gateway.url}/metrics`)).status, 401);
      const wrong = await fetch(`${gateway.url}/metrics`, { headers: { authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401);
      const right = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      assert.equal(right.status, 200);
    } finally {
      await gateway.stop();
    }
  });
});

describe('finding 5: headers and token transport', () => {
  test('token and history responses are not cacheable', async () => {
    const created = await fetch(`${system.baseUrl}/token?name=Ada`, { method: 'POST' });
    assert.equal(created.headers.get('cache-control'), 'no-store');
    const { token } = (await created.json()) as { token: string };
    const history = await fetch(`${system.baseUrl}/refresh_token?token=${token}`);
    assert.equal(history.headers.get('cache-control'), 'no-store');
    const own = await fetch(`${system.baseUrl}/api/v1/session`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(own.status, 200);
    assert.equal(own.headers.get('cache-control'), 'no-store');
    const expired = await fetch(`${system.baseUrl}/refresh_token?token=nope`);
    assert.equal(expired.headers.get('cache-control'), 'no-store');
  });

  test('no HSTS over plain HTTP, nor from an untrusted X-Forwarded-Proto; consistent framing; connect-src self', async () => {
    for (const headers of [{}, { 'x-forwarded-proto': 'https' }] as Array<Record<string, string>>) {
      const response = await fetch(`${system.baseUrl}/`, { headers });
      assert.equal(response.headers.get('strict-transport-security'), null, JSON.stringify(headers));
      assert.equal(response.headers.get('x-frame-options'), 'DENY');
      const csp = response.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(csp, /connect-src 'self'(;|$)/, csp);
    }
  });

  test('behind a trusted proxy that says https, HSTS is sent', async () => {
    const gateway = await startGateway(loadConfig({ ...system.env, TRUST_PROXY: 'true' }), createLogger('test', 'silent'));
    try {
      const plain = await fetch(`${gateway.url}/`);
      assert.equal(plain.headers.get('strict-transport-security'), null);
      const proxied = await fetch(`${gateway.url}/`, { headers: { 'x-forwarded-proto': 'https' } });
      assert.match(proxied.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
    } finally {
      await gateway.stop();
    }
  });

  test('the token travels as a subprotocol; the server answers parley.v1 only', async () => {
    const session = await createSession(system.baseUrl);
    const { status, ws } = await handshake(session.token, { query: false, protocols: ['parley.v1', `parley.token.${session.token}`] });
    assert.equal(status, 101);
    assert.ok(ws !== undefined);
    assert.equal(ws.protocol, 'parley.v1');
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.once('message', (data) => resolve(JSON.parse(String(data)) as Record<string, unknown>));
      ws.once('close', (code) => reject(new Error(`closed with ${code} before ready`)));
    });
    assert.equal(ready.type, 'ready');
    ws.close();
    const raw = await rawRequest(port, upgradeRequest('/chat', { 'Sec-WebSocket-Protocol': `parley.v1, parley.token.${session.token}` }));
    assert.match(raw.text, /^HTTP\/1\.1 101/);
    const head = raw.text.split('\r\n\r\n')[0] ?? '';
    assert.match(head, /sec-websocket-protocol: parley\.v1$/im);
    assert.ok(!head.includes(session.token), 'the token is never echoed');
  });

  test('an unknown token in the subprotocol is refused like one in the query', async () => {
    const { status, ws } = await handshake('', { query: false, protocols: ['parley.v1', 'parley.token.0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f'] });
    assert.equal(status, 101);
    const code = await new Promise<number>((resolve) => ws?.once('close', (closeCode) => resolve(closeCode)));
    assert.equal(code, 1008);
  });

  test('refresh_token takes Authorization: Bearer', async () => {
    const session = await createSession(system.baseUrl);
    for (const method of ['GET', 'POST']) {
      const response = await fetch(`${system.baseUrl}/refresh_token`, { method, headers: { authorization: `Bearer ${session.token}` } });
      assert.equal(response.status, 200, method);
      assert.equal(((await response.json()) as { token: string }).token, session.token);
    }
    const wrong = await fetch(`${system.baseUrl}/refresh_token`, { headers: { authorization: 'Bearer 0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f' } });
    assert.equal(wrong.status, 400);
  });
});

describe('finding 6: frames follow the message limit; a fast sender is slowed, not buffered', () => {
  test('a frame well above 4 bytes per character of MESSAGE_MAX_CHARS closes with 1009', async () => {
    const session = await createSession(system.baseUrl);
    const socket = await TestSocket.open(system.baseUrl, session.token);
    socket.send({ type: 'message', text: 'x'.repeat(1000 * 4 + 8192) });
    const closed = await socket.waitForClose();
    assert.equal(closed.code, 1009);
    const fine = await TestSocket.open(system.baseUrl, session.token);
    fine.send({ type: 'message', text: '😀'.repeat(1000) });
    await fine.waitFor((frame) => frame.type === 'accepted');
    fine.close();
  });

  test('a burst of frames pauses the socket; every frame still gets its answer', async () => {
    const session = await createSession(system.baseUrl);
    const socket = await TestSocket.open(system.baseUrl, session.token);
    const count = 2000;
    // One write: every frame arrives at once, faster than the gateway answers them.
    socket.ws.send(JSON.stringify({ type: 'ping' }));
    for (let index = 1; index < count; index += 1) socket.ws.send(JSON.stringify({ type: 'ping' }));
    await socket.waitForCount((frame) => frame.type === 'pong', count, 30_000);
    const metrics = await (await fetch(`${system.baseUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const pauses = Number(/^parley_gateway_socket_pauses_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(pauses > 0, `the socket was paused (${pauses} times)`);
    socket.close();
  });
});
