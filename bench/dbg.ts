import { ProcessGroup } from './lib/processes.js';
import { startRedis, startStack } from './lib/stack.js';
import { closedLoop } from './lib/load.js';
const group = new ProcessGroup('/tmp/bdbg/logs');
try {
  const redis = await startRedis(group, 6390);
  const stack = await startStack(group, { redis, gateways: 1, workers: 1, keyPrefix: 'pb:', model: { tokens: 8, rate: 'instant', recordYields: false }, workerConcurrency: 16, flushIntervalMs: 50, cpuProfDir: undefined });
  const mode = (process.argv[2] ?? 'plain') as 'plain' | 'streaming';
  const out = await closedLoop({ urls: stack.gateways.map((g) => g.url), mode, clients: 4, warmupMs: 200, durationMs: 700, turnsPerSession: 20, turnTimeoutMs: 5000, tag: 'dbg', signal: new AbortController().signal });
  for (const s of out.samples) console.log(s.text, s.ok, s.error, (s.doneAt - s.sentAt).toFixed(2), s.chars);
  console.log(out.errors, out.sessions);
  const { RawRedis } = await import('./lib/resp.js');
  const r = await RawRedis.connect('127.0.0.1', redis.port);
  for (const t of out.sessions) {
    console.log(t.slice(0, 8), JSON.stringify(await r.command('HGETALL', `pb:{${t}}:session`)), await r.command('XLEN', `pb:{${t}}:events`), await r.command('EXISTS', `pb:{${t}}:lease`), await r.command('LLEN', `pb:{${t}}:messages`));
  }
  console.log(JSON.stringify(await r.command('XPENDING', 'pb:queue', 'pb:workers')));
  console.log(JSON.stringify(await r.command('XINFO', 'GROUPS', 'pb:queue')));
  await stack.stop();
} finally {
  await group.stopAll();
}
process.exit(0);
