/**
 * A TCP proxy in front of Redis that a test controls: it can stall every connection through it
 * (like SIGSTOP on the server, but for one client process only) and add latency. Faults become
 * deterministic: the test decides exactly when Redis stops answering and for how long.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** Stops forwarding in both directions; bytes wait in the proxy until resume(). */
  pause(): void;
  resume(): void;
  /** Delays every chunk by this many milliseconds (0 turns it off). */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

interface Pipe {
  paused: boolean;
  latencyMs: number;
  readonly waiting: Array<() => void>;
}

/** Forwards from one socket to the other, holding chunks while paused, in order. */
function forward(from: Socket, to: Socket, pipe: Pipe): void {
  let chain = Promise.resolve();
  from.on('data', (chunk) => {
    const due = Date.now() + pipe.latencyMs;
    chain = chain.then(async () => {
      const wait = due - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      while (pipe.paused) await new Promise<void>((resolve) => pipe.waiting.push(resolve));
      if (!to.destroyed) to.write(chunk);
    });
  });
  from.on('close', () => void chain.then(() => to.destroy()));
  from.on('error', () => to.destroy());
}

export async function startTcpProxy(targetPort = 6379, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pipe: Pipe = { paused: false, latencyMs: 0, waiting: [] };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    forward(client, upstream, pipe);
    forward(upstream, client, pipe);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `redis://127.0.0.1:${port}`,
    pause: () => {
      pipe.paused = true;
    },
    resume: () => {
      pipe.paused = false;
      for (const wake of pipe.waiting.splice(0)) wake();
    },
    setLatency: (ms) => {
      pipe.latencyMs = ms;
    },
    close: async () => {
      pipe.paused = false;
      for (const wake of pipe.waiting.splice(0)) wake();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
