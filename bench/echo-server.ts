/**
 * The WebSocket ceiling: a bare `ws` server that sends every text frame straight back, nothing
 * else. Driven with the same client count and frame size as the plain-mode throughput run, it
 * shows how many round trips this machine's Node + ws can do at all.
 */
import { WebSocketServer } from 'ws';

const server = new WebSocketServer({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0), perMessageDeflate: false });
server.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on('listening', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.send?.({ type: 'listening', port });
});
process.once('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
