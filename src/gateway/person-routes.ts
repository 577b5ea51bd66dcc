/**
 * What a person owns, as a whole: `GET /api/v1/me/export` (a JSON file of the account and every
 * conversation, every branch) and `DELETE /api/v1/me` (the account and everything of it). Both need
 * the person (requirePerson: CSRF for the cookie on DELETE).
 */
import type { FastifyInstance } from 'fastify';
import type { AuthConfig } from '../config/config.js';
import { AuthError, ErrorCodes } from '../contracts/errors.js';
import type { PersonData } from '../store/person-data.js';
import { signedIn, type Identity } from './auth/identity.js';
import { clearAuthCookie } from './auth/routes.js';
import { noStore } from './http-util.js';

export interface PersonRouteDependencies {
  readonly personData: PersonData;
  readonly identity: Identity;
  readonly auth: AuthConfig;
}

export function registerPersonRoutes(app: FastifyInstance, deps: PersonRouteDependencies): void {
  const options = { onSend: noStore, preHandler: deps.identity.requirePerson };

  // Not bound by the one-round-trip deadline: it reads every conversation, one after another.
  app.get('/api/v1/me/export', options, async (request, reply) => {
    const { person } = signedIn(request);
    const exported = await deps.personData.export(person.id);
    if (exported === null) throw new AuthError(ErrorCodes.notSignedIn, 401);
    const day = exported.exportedAt.slice(0, 10);
    return reply
      .type('application/json; charset=utf-8')
      .header('Content-Disposition', `attachment; filename="parley-${person.username}-${day}.json"`)
      .send(`${JSON.stringify(exported, null, 2)}\n`);
  });

  // Not bound by the deadline either: it removes every conversation, one after another.
  app.delete('/api/v1/me', options, async (request, reply) => {
    await deps.personData.delete(signedIn(request).person.id);
    clearAuthCookie(request, reply, deps.auth);
    return reply.code(204).send();
  });
}
