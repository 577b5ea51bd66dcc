/** Small HTTP pieces every route file of the gateway shares. */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * onSend hook: a token, a history, a person or a CSRF token must never sit in a browser or proxy
 * cache (errors included).
 */
export const noStore = async (_request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
  reply.header('Cache-Control', 'no-store');
  return payload;
};

/** The token of `Authorization: Bearer <token>`, if the request carries one. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  return /^Bearer +(\S+)$/i.exec(headers.authorization ?? '')?.[1];
}

/** Compares a secret in constant time (no early exit that would tell how much of it was right). */
export function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const [a, b] = [Buffer.from(given), Buffer.from(secret)];
  return a.length === b.length && timingSafeEqual(a, b);
}
