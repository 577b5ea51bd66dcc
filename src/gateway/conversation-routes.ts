/**
 * A signed-in person's conversations under /api/v1/conversations: list (newest first, search,
 * pages), create, read, rename, delete, export. Every route needs the person (requirePerson: 401
 * without one, CSRF for cookie + unsafe methods); a conversation of anyone else answers 404 like
 * one that does not exist. Refusals are AuthErrors: `{"detail", "code"}`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AuthError, ErrorCodes } from '../contracts/errors.js';
import { withDeadline } from '../shared/deadline.js';
import { LIST_MAX, TITLE_MAX_CHARS, parseCursor, type ConversationStore } from '../store/conversation-store.js';
import { signedIn, type Identity } from './auth/identity.js';
import { LONE_SURROGATE } from './http-routes.js';
import { within } from './auth/routes.js';
import { noStore } from './http-util.js';
import type { Limit } from './limits.js';

export interface ConversationRouteDependencies {
  readonly conversations: ConversationStore;
  readonly identity: Identity;
  /** New conversations per account (they are kept for good, so creating them is limited). */
  readonly limitCreate: Limit;
  readonly deadlineMs: number;
}

const DEFAULT_LIMIT = 50;
const SEARCH_MAX_CHARS = 200;
/** Control characters would break a title in a heading, a file or a terminal. */
const CONTROL = /\p{Cc}/u;

const title = z
  .string()
  .transform((value) => value.trim())
  .refine((value) => value !== '' && [...value].length <= TITLE_MAX_CHARS && !CONTROL.test(value) && !LONE_SURROGATE.test(value), {
    message: `a title of 1 to ${TITLE_MAX_CHARS} characters, without control characters`,
  });
const createBody = z.object({ title: title.optional() }).strict().nullish();
const renameBody = z.object({ title }).strict();
const listQuery = z.object({
  q: z.string().max(SEARCH_MAX_CHARS).optional(),
  limit: z
    .string()
    .regex(/^\d{1,4}$/)
    .transform(Number)
    .pipe(z.number().int().min(1).max(LIST_MAX))
    .optional(),
  before: z.string().max(100).optional(),
});
const exportQuery = z.object({ format: z.enum(['markdown', 'json']).optional() });
const idParams = z.object({ id: z.string() });

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
    throw new AuthError(ErrorCodes.invalidRequest, 400, `The request could not be read: ${where}${issue?.message ?? 'malformed'}.`);
  }
  return parsed.data;
}

const notFound = () => new AuthError(ErrorCodes.conversationNotFound, 404);

export function registerConversationRoutes(app: FastifyInstance, deps: ConversationRouteDependencies): void {
  const { conversations, identity, deadlineMs } = deps;
  const options = { onSend: noStore, preHandler: identity.requirePerson };
  const deadline = <T>(work: Promise<T>) => withDeadline(work, deadlineMs);
  const person = (request: FastifyRequest) => signedIn(request).person;
  const id = (request: FastifyRequest) => parse(idParams, request.params).id;

  app.get('/api/v1/conversations', options, async (request) => {
    const query = parse(listQuery, request.query);
    const before = query.before === undefined ? undefined : parseCursor(query.before);
    if (query.before !== undefined && before === undefined) throw new AuthError(ErrorCodes.invalidRequest, 400, 'The request could not be read: before: not a cursor from this list.');
    // A search reads messages, so it is not bound by the usual deadline of one Redis round trip.
    const listing = conversations.list(person(request).id, { limit: query.limit ?? DEFAULT_LIMIT, ...(query.q === undefined || query.q === '' ? {} : { q: query.q }), ...(before === undefined ? {} : { before }) });
    return query.q === undefined || query.q === '' ? deadline(listing) : listing;
  });

  app.post('/api/v1/conversations', options, async (request, reply) => {
    const body = parse(createBody, request.body);
    const owner = person(request);
    await within(deps.limitCreate, `account:${owner.id}`, deadlineMs, 'Too many new conversations');
    const created = await deadline(conversations.create(owner, body?.title));
    return reply.code(201).send(created);
  });

  app.get('/api/v1/conversations/:id', options, async (request) => {
    const view = await deadline(conversations.get(person(request).id, id(request)));
    if (view === null) throw notFound();
    return view;
  });

  app.patch('/api/v1/conversations/:id', options, async (request) => {
    const body = parse(renameBody, request.body);
    const renamed = await deadline(conversations.rename(person(request).id, id(request), body.title));
    if (renamed === null) throw notFound();
    return renamed;
  });

  app.delete('/api/v1/conversations/:id', options, async (request, reply) => {
    if (!(await deadline(conversations.remove(person(request).id, id(request))))) throw notFound();
    return reply.code(204).send();
  });

  app.get('/api/v1/conversations/:id/export', options, async (request, reply) => {
    const { format } = parse(exportQuery, request.query);
    const exported = await deadline(conversations.export(person(request).id, id(request), format ?? 'markdown'));
    if (exported === null) throw notFound();
    return reply.type(exported.contentType).header('Content-Disposition', `attachment; filename="${exported.filename}"`).send(exported.body);
  });
}
