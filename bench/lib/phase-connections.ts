/**
 * Idle connections: N WebSocket connections held open on one gateway by a helper process
 * (bench/idle-clients.ts, started with a raised `ulimit -n`). The gateway's resident memory
 * (VmRSS) is read before the sockets open — after their sessions exist, so session creation is
 * not counted — and again after they are all set up and the gateway has settled.
 */
import { idleReplySchema, type IdleReply, type IdleRequest } from './ipc.js';
import type { StackContext } from './context.js';
import { rssKiB, sleep, untilReady, type Managed } from './processes.js';
import { round3 } from './stats.js';

export interface ConnectionsResult {
  readonly requested: number;
  /** Upgrades that completed / sockets the gateway fully set up ("ready" frame received). */
  readonly opened: number;
  readonly ready: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  readonly sessions: number;
  readonly sessionsShared: boolean;
  readonly sessionCreateMs: number;
  /** From the first connect to the last upgrade, and to the last "ready". */
  readonly openMs: number;
  readonly readyMs: number;
  readonly connectionsPerSec: number;
  readonly gatewayRssBeforeKiB: number | null;
  readonly gatewayRssAfterKiB: number | null;
  readonly rssPerConnectionKiB: number | null;
}

const SETTLE_MS = 2000;

function replies(managed: Managed): (type: IdleReply['type']) => Promise<IdleReply> {
  const waiting: Array<{ type: IdleReply['type']; resolve: (reply: IdleReply) => void }> = [];
  managed.child.on('message', (raw: unknown) => {
    const reply = idleReplySchema.safeParse(raw);
    if (!reply.success) return;
    const index = waiting.findIndex((entry) => entry.type === reply.data.type);
    const [entry] = index >= 0 ? waiting.splice(index, 1) : [];
    entry?.resolve(reply.data);
  });
  return (type) => untilReady(managed, new Promise<IdleReply>((resolve) => waiting.push({ type, resolve })), 300_000, `"${type}"`);
}

function send(managed: Managed, message: IdleRequest): void {
  if (managed.child.connected) managed.child.send(message);
}

export async function runConnections(ctx: StackContext): Promise<ConnectionsResult> {
  const { options } = ctx;
  const gateway = ctx.stack.gateways[0];
  if (gateway === undefined) throw new Error('no gateway to connect to');
  ctx.log(`connections: ${options.connections} idle WebSockets on one gateway (${options.sharedSession ? 'one shared session' : 'one session each'})`);
  const managed = ctx.group.spawn('idle-clients', process.execPath, ['--import', 'tsx', 'bench/idle-clients.ts'], { ipc: true, raiseFdLimit: true });
  const next = replies(managed);
  try {
    const sessionsReady = next('sessions-ready');
    send(managed, { type: 'sessions', url: gateway.url, count: options.connections, shared: options.sharedSession });
    const sessions = await sessionsReady;
    await sleep(1000);
    const before = gateway.pid === null ? null : rssKiB(gateway.pid);
    const openedReply = next('opened');
    send(managed, { type: 'open', concurrency: 256 });
    const opened = await openedReply;
    await sleep(SETTLE_MS);
    const after = gateway.pid === null ? null : rssKiB(gateway.pid);
    if (sessions.type !== 'sessions-ready' || opened.type !== 'opened') throw new Error('unexpected reply from idle-clients');
    return {
      requested: options.connections,
      opened: opened.opened,
      ready: opened.ready,
      failed: opened.failed,
      firstError: opened.firstError,
      sessions: sessions.sessions,
      sessionsShared: options.sharedSession,
      sessionCreateMs: round3(sessions.ms),
      openMs: round3(opened.openMs),
      readyMs: round3(opened.readyMs),
      connectionsPerSec: round3(opened.ready / (opened.readyMs / 1000)),
      gatewayRssBeforeKiB: before,
      gatewayRssAfterKiB: after,
      rssPerConnectionKiB: before === null || after === null || opened.ready === 0 ? null : round3((after - before) / opened.ready),
    };
  } finally {
    send(managed, { type: 'close' });
    await ctx.group.stop(managed, 5000);
  }
}
