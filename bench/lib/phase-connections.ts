/**
 * Idle connections: N WebSocket connections held open on one gateway by a helper process
 * (bench/idle-clients.ts, started with a raised `ulimit -n`). The sockets go to a gateway started
 * for this phase that has served nothing else — a gateway that ran the load phases has a heap
 * with room to spare, which new sockets would fill without growing RSS. Their sessions are created
 * through another gateway (sessions live in Redis), so request garbage is not counted either.
 * VmRSS is read before the sockets open and again after they are all set up and it has settled.
 */
import { idleReplySchema, type IdleReply, type IdleRequest } from './ipc.js';
import type { StackContext } from './context.js';
import { rssKiB, sleep, untilReady, type Managed } from './processes.js';
import { round3 } from './stats.js';

export interface ConnectionsResult {
  readonly requested: number;
  /** True when a gateway that served nothing else took the sockets (false: a targeted gateway). */
  readonly freshGateway: boolean;
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
  const loaded = ctx.stack.gateways[0];
  if (loaded === undefined) throw new Error('no gateway to connect to');
  const fresh = await ctx.stack.startFreshGateway();
  const gateway = fresh?.gateway ?? loaded;
  ctx.log(`connections: ${options.connections} idle WebSockets on one gateway (${options.sharedSession ? 'one shared session' : 'one session each'})`);
  const managed = ctx.group.spawn('idle-clients', process.execPath, ['--import', 'tsx', 'bench/idle-clients.ts'], { ipc: true, raiseFdLimit: true });
  const next = replies(managed);
  try {
    const sessionsReady = next('sessions-ready');
    send(managed, { type: 'sessions', url: loaded.url, count: options.connections, shared: options.sharedSession });
    const sessions = await sessionsReady;
    await sleep(options.settleMs);
    const before = gateway.pid === null ? null : rssKiB(gateway.pid);
    const openedReply = next('opened');
    send(managed, { type: 'open', url: gateway.url, concurrency: 256 });
    const opened = await openedReply;
    await sleep(options.settleMs);
    const after = gateway.pid === null ? null : rssKiB(gateway.pid);
    if (sessions.type !== 'sessions-ready' || opened.type !== 'opened') throw new Error('unexpected reply from idle-clients');
    return {
      requested: options.connections,
      freshGateway: fresh !== null,
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
    await fresh?.stop();
  }
}
