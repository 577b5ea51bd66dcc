/**
 * Reads an answer's text: server-sent events from the undici body through eventsource-parser
 * (spec-complete: any line ending, comments, multi-line data), or a JSON body when the server
 * ignored `stream: true`. Texts of one network read come together, so a token costs one generator
 * step, not two.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { z } from 'zod';
import { ErrorCodes } from '../../contracts/errors.js';
import { apiErrorSchema, truncate, type OpenAIErrors } from './errors.js';
import { MAX_ERROR_BODY_BYTES, header, readLimited, type Body, type Response } from './http.js';

/** A non-streaming JSON answer (a server that ignored `stream: true`) is read up to this size. */
const MAX_JSON_BODY_BYTES = 8 * 1024 * 1024;

const streamChunkSchema = z.object({
  choices: z
    .array(
      z.object({
        delta: z.object({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  error: apiErrorSchema.nullish(),
});

const completionSchema = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullish() }).nullish() })).min(1),
});

interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Where the stream is: `finished` once a choice has a finish_reason, `done` at [DONE]. */
interface StreamState {
  finished: boolean;
  done: boolean;
}

/** Collects the events one network read completes. */
class SseReader {
  private events: SseEvent[] = [];
  private readonly parser = createParser({
    onEvent: (message: EventSourceMessage) => this.events.push({ event: message.event ?? '', data: message.data }),
  });

  /** Feeds decoded text; returns the events completed by it. */
  push(text: string): SseEvent[] {
    this.parser.feed(text);
    const events = this.events;
    if (events.length > 0) this.events = [];
    return events;
  }

  /** The stream ended: a last event counts even without its blank line (servers omit it). */
  end(): SseEvent[] {
    return this.push('\n\n');
  }
}

/**
 * The text of the event nearly every token arrives in, `{"choices":[{"delta":{"content":"…"},
 * "finish_reason":null}]}`, checked by hand: the schema's parse cost more than all the rest of a
 * token's handling. Anything else (an error, a finish, no content, a surprise) returns undefined
 * and goes through streamChunkSchema.
 */
function plainDelta(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || 'error' in json) return undefined;
  const { choices } = json as { choices?: unknown };
  if (!Array.isArray(choices) || choices.length !== 1) return undefined;
  const choice: unknown = choices[0];
  if (typeof choice !== 'object' || choice === null) return undefined;
  const { delta, finish_reason: finish } = choice as { delta?: unknown; finish_reason?: unknown };
  if ((finish !== null && finish !== undefined) || typeof delta !== 'object' || delta === null) return undefined;
  const { content } = delta as { content?: unknown };
  return typeof content === 'string' ? content : undefined;
}

/** Yields the answer's text chunks, those of one network read together. */
export async function* readAnswer(response: Response, errors: OpenAIErrors): AsyncGenerator<string[], void, undefined> {
  const { body } = response;
  const type = header(response, 'content-type') ?? '';
  if (type.includes('application/json')) {
    const text = await readJsonAnswer(body, errors);
    if (text !== '') yield [text];
    return;
  }
  // A proxy's or login page's HTML would otherwise look like an empty, truncated stream.
  if (type.includes('text/html')) {
    body.destroy();
    throw errors.unusable(`an HTML page instead of an event stream (is LLM_BASE_URL the API's /v1 URL?)`);
  }
  // Decoded here: undici's body ignores setEncoding, and a character may span two reads.
  const decoder = new TextDecoder();
  const sse = new SseReader();
  const state: StreamState = { finished: false, done: false };
  let trailing = 0;
  try {
    for await (const bytes of body as AsyncIterable<Buffer>) {
      // After [DONE] the rest of the body (usually nothing) is read, not cut: leaving the loop
      // early would destroy the stream and with it the kept-alive connection.
      if (state.done) {
        trailing += bytes.byteLength;
        if (trailing > MAX_ERROR_BODY_BYTES) break;
        continue;
      }
      yield* readEvents(sse.push(decoder.decode(bytes, { stream: true })), state, errors);
    }
    if (!state.done) yield* readEvents([...sse.push(decoder.decode()), ...sse.end()], state, errors);
  } finally {
    // An abort or a failure: the connection cannot be reused.
    if (!body.readableEnded) body.destroy();
  }
  if (!state.done && !state.finished) {
    throw errors.fail(ErrorCodes.modelFailed, 'The model stream ended before the answer was complete (no [DONE] and no finish_reason)', true);
  }
}

/**
 * The texts of events up to [DONE] or up to an error event, which throws once the texts before
 * it went out: text that reached the consumer is what decides whether a retry is allowed.
 */
async function* readEvents(events: readonly SseEvent[], state: StreamState, errors: OpenAIErrors): AsyncGenerator<string[], void, undefined> {
  const texts: string[] = [];
  let failure: unknown;
  try {
    for (const event of events) {
      const text = readEvent(event, state, errors);
      if (text !== '') texts.push(text);
      if (state.done) break;
    }
  } catch (error) {
    failure = error;
  }
  if (texts.length > 0) yield texts;
  if (failure !== undefined) throw failure;
}

/** Interprets one SSE event; returns its text ('' when it has none). */
function readEvent(event: SseEvent, state: StreamState, errors: OpenAIErrors): string {
  if (event.data.trim() === '[DONE]') {
    state.done = true;
    return '';
  }
  let json: unknown;
  try {
    json = JSON.parse(event.data);
  } catch {
    // `event: error` with a plain-text payload is still an error report, not garbage.
    if (event.event === 'error') throw errors.api(event.data);
    throw errors.unusable(`an event that is not JSON: ${truncate(event.data, 80)}`);
  }
  if (event.event === '') {
    const text = plainDelta(json);
    if (text !== undefined) return text;
  }
  const chunk = streamChunkSchema.safeParse(json);
  if (!chunk.success) throw errors.unusable(`an unexpected event: ${truncate(event.data, 80)}`);
  const { error, choices } = chunk.data;
  if (error) throw errors.api(error);
  if (event.event === 'error') throw errors.api(event.data);
  const choice = choices?.[0];
  if (choice?.finish_reason) state.finished = true;
  // Role-only and empty deltas carry no text.
  return choice?.delta?.content ?? '';
}

async function readJsonAnswer(body: Body, errors: OpenAIErrors): Promise<string> {
  const text = await readLimited(body, MAX_JSON_BODY_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw errors.unusable('a JSON body that does not parse');
  }
  const failure = errors.inBody(json);
  if (failure !== undefined) throw failure;
  const completion = completionSchema.safeParse(json);
  if (!completion.success) throw errors.unusable('a JSON body without choices');
  return completion.data.choices[0]?.message?.content ?? '';
}
