/**
 * Raw HTTP over node:net, for requests no HTTP client would send (malformed request lines, bad
 * upgrade URLs). Resolves with what the server wrote before it closed or went quiet.
 */
import { connect } from 'node:net';

export interface RawReply {
  /** Everything the server sent (latin1), '' when it closed without a word. */
  readonly text: string;
  /** Status code of the first response line, or undefined when there was none. */
  readonly status: number | undefined;
  /** 'closed' when the server ended the connection, 'quiet' when it kept it open past idleMs. */
  readonly end: 'closed' | 'quiet' | 'error';
}

export async function rawRequest(port: number, payload: string | Buffer, idleMs = 500): Promise<RawReply> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (end: RawReply['end']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: match === null ? undefined : Number(match[1]), end });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish('quiet'), idleMs);
    };
    socket.on('connect', () => {
      socket.write(payload);
      arm();
    });
    socket.on('data', (data: Buffer) => {
      chunks.push(data);
      arm();
    });
    socket.on('end', () => finish('closed'));
    socket.on('close', () => finish('closed'));
    socket.on('error', () => finish('error'));
  });
}

/** An HTTP/1.1 upgrade request for `target` with extra header lines. */
export function upgradeRequest(target: string, headers: Readonly<Record<string, string>> = {}, upgrade = 'websocket'): string {
  const lines = [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    `Upgrade: ${upgrade}`,
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}
