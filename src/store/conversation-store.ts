/**
 * A signed-in person's conversations. Each one IS a Parley session (same id = token, same
 * pipeline, order, exactly-once, resume and stop), created with an owner and `keep`, so its
 * history does not expire. Per account, in the account's hash tag: a sorted set of conversation
 * ids scored by the time of their newest message (newest first = highest score) and a hash of
 * titles. The session keys live in their own slots, so index and session are written one after
 * the other, never in one script.
 */
import { randomUUID } from 'node:crypto';
import { branchRecords } from '../contracts/branches.js';
import { conversationIndexKeys, isValidToken } from '../contracts/keys.js';
import type { MessageRecord, SessionView } from '../contracts/protocol.js';
import { scoredMembersSchema } from './replies.js';
import type { SessionStore } from './session-store.js';

export interface ConversationSummary {
  readonly id: string;
  /** "" until the person names it or its first message does. */
  readonly title: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ConversationPage {
  readonly conversations: ConversationSummary[];
  /** Pass as `before` for the next page; absent on the last page. */
  readonly next?: string;
}

export interface ListQuery {
  /** Case-insensitive text searched in titles and every message of every branch. */
  readonly q?: string;
  readonly limit: number;
  /** A `next` from the page before. */
  readonly before?: Cursor;
}

/** A position in a list: the conversation last shown and its score (ties are ordered by id). */
export interface Cursor {
  readonly score: number;
  readonly id: string;
}

export type ConversationView = SessionView & { title: string };

/** A conversation as its JSON export has it: every stored record of every branch, and the head. */
export interface ConversationData {
  readonly id: string;
  readonly title: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly head: number;
  readonly messages: SessionView['messages'];
}

export interface ConversationExport {
  readonly filename: string;
  readonly contentType: string;
  readonly body: string;
}

/** The owner as the conversation store needs them. */
export interface Owner {
  readonly id: string;
  readonly displayName: string;
}

export const TITLE_MAX_CHARS = 200;
export const LIST_MAX = 200;
const AUTO_TITLE_CHARS = 60;
/** Conversations whose messages one search step reads at once (one pipelined round trip). */
const SEARCH_BATCH = 50;

const CURSOR_PATTERN = /^(\d{1,16}):(.+)$/;

/** Reads a `before` cursor; undefined when it is not one this store wrote. */
export function parseCursor(text: string): Cursor | undefined {
  const match = CURSOR_PATTERN.exec(text);
  const score = Number(match?.[1]);
  const id = match?.[2];
  return Number.isSafeInteger(score) && isValidToken(id) ? { score, id } : undefined;
}

function cursorOf(entry: Cursor): string {
  return `${entry.score}:${entry.id}`;
}

/**
 * A title from the first message: its first words, at most AUTO_TITLE_CHARS characters, cut at
 * a word (unless the first word alone is longer), white space folded to single spaces.
 */
export function autoTitle(text: string): string {
  const folded = text.replace(/\s+/gu, ' ').trim();
  const chars = [...folded];
  if (chars.length <= AUTO_TITLE_CHARS) return folded;
  // One character more: a word that ends right at the limit is followed by a space, and kept.
  const cut = chars.slice(0, AUTO_TITLE_CHARS + 1).join('');
  const lastSpace = cut.lastIndexOf(' ');
  const words = lastSpace > AUTO_TITLE_CHARS / 2 ? cut.slice(0, lastSpace) : chars.slice(0, AUTO_TITLE_CHARS).join('');
  return `${words.trimEnd()}…`;
}

/** The commands the conversation lists use. */
export interface ConversationStoreRedis {
  multi(): ConversationIndexWrite;
  hGet(key: string, field: string): Promise<string | null>;
  hmGet(key: string, fields: string[]): Promise<Array<string | null>>;
  hSet(key: string, field: string, value: string): Promise<unknown>;
  zScore(key: string, member: string): Promise<number | null>;
  zCount(key: string, min: number, max: number): Promise<number>;
  zRangeWithScores(
    key: string,
    max: number | string,
    min: string,
    options: { BY: 'SCORE'; REV: true; LIMIT: { offset: number; count: number } },
  ): Promise<unknown>;
}

/** The MULTIs that write a person's conversation index and titles. */
export interface ConversationIndexWrite {
  zAdd(key: string, member: { score: number; value: string }, options?: { condition: 'XX'; comparison: 'GT' }): ConversationIndexWrite;
  zRem(key: string, member: string): ConversationIndexWrite;
  hSet(key: string, field: string, value: string): ConversationIndexWrite;
  hSetNX(key: string, field: string, value: string): ConversationIndexWrite;
  hDel(key: string, field: string): ConversationIndexWrite;
  exec(): Promise<unknown>;
}

export class ConversationStore {
  constructor(
    private readonly redis: ConversationStoreRedis,
    private readonly sessions: SessionStore,
    private readonly prefix: string,
  ) {}

  /**
   * The index entry is written before the session: a failure in between leaves an entry without
   * a session (never listed, still removed with the account), never a session no index knows of,
   * which would be kept for ever and reachable by nobody.
   */
  async create(owner: Owner, title?: string): Promise<ConversationSummary> {
    const keys = conversationIndexKeys(this.prefix, owner.id);
    const id = randomUUID();
    const now = Date.now();
    const writing = this.redis.multi().zAdd(keys.index, { score: now, value: id });
    if (title !== undefined) writing.hSet(keys.titles, id, title);
    await writing.exec();
    const view = await this.sessions.create(owner.displayName, owner.id, id);
    return { id, title: title ?? '', createdAt: view.session_start, updatedAt: new Date(now).toISOString() };
  }

  /** Newest first; with `q`, only conversations whose title or any message contains it. */
  async list(accountId: string, query: ListQuery): Promise<ConversationPage> {
    const needle = query.q?.toLowerCase() ?? '';
    const found: ConversationSummary[] = [];
    const cursors: Cursor[] = [];
    let before = query.before;
    // One more than asked for tells whether there is a next page.
    while (found.length <= query.limit) {
      const want = needle === '' ? query.limit + 1 - found.length : SEARCH_BATCH;
      const entries = await this.page(accountId, before, want);
      const summaries = await this.summarize(accountId, entries);
      const matches = needle === '' ? summaries.map(() => true) : await this.matches(summaries, needle);
      summaries.forEach((summary, index) => {
        const entry = entries[index];
        if (summary === undefined || entry === undefined || matches[index] !== true || found.length > query.limit) return;
        found.push(summary);
        cursors.push(entry);
      });
      const last = entries.at(-1);
      if (last === undefined || entries.length < want) break;
      before = last;
    }
    const page = found.slice(0, query.limit);
    const lastShown = cursors[query.limit - 1];
    return found.length > query.limit && lastShown !== undefined ? { conversations: page, next: cursorOf(lastShown) } : { conversations: page };
  }

  /** The conversation as GET /api/v1/session shows a session, plus its title; null when not the person's. */
  async get(accountId: string, id: string): Promise<ConversationView | null> {
    // The index, not only the session's owner: an anonymous session is no one's conversation.
    if (!(await this.owns(accountId, id))) return null;
    const view = await this.sessions.read(id, accountId);
    if (view === null) return null;
    const title = await this.redis.hGet(conversationIndexKeys(this.prefix, accountId).titles, id);
    return { ...view, title: title ?? '' };
  }

  async rename(accountId: string, id: string, title: string): Promise<ConversationSummary | null> {
    const keys = conversationIndexKeys(this.prefix, accountId);
    if (!(await this.owns(accountId, id))) return null;
    await this.redis.hSet(keys.titles, id, title);
    const [summary] = await this.summarize(accountId, [{ id, score: (await this.redis.zScore(keys.index, id)) ?? Date.now() }]);
    return summary ?? null;
  }

  /** Deletes the conversation: every key of its session, then its index entry and title. */
  async remove(accountId: string, id: string): Promise<boolean> {
    if (!(await this.owns(accountId, id))) return false;
    await this.sessions.remove(id);
    const keys = conversationIndexKeys(this.prefix, accountId);
    await this.redis.multi().zRem(keys.index, id).hDel(keys.titles, id).exec();
    return true;
  }

  /**
   * A new turn was accepted: the conversation moves to the top of its list (XX: a conversation
   * deleted meanwhile is not brought back), and its first message names it unless the person
   * already did.
   */
  async noteMessage(accountId: string, id: string, record: MessageRecord): Promise<void> {
    const keys = conversationIndexKeys(this.prefix, accountId);
    const writing = this.redis.multi().zAdd(keys.index, { score: Date.now(), value: id }, { condition: 'XX', comparison: 'GT' });
    if (record.seq === 1) writing.hSetNX(keys.titles, id, autoTitle(record.msg));
    await writing.exec();
  }

  /**
   * Markdown: the branch shown, as a transcript. JSON: everything stored, every branch (records
   * with `parent`, and `head`), so nothing is lost. Null when not the person's.
   */
  async export(accountId: string, id: string, format: 'markdown' | 'json'): Promise<ConversationExport | null> {
    const everything = await this.everything(accountId, id);
    if (everything === null) return null;
    if (format === 'json') {
      return { filename: `conversation-${id}.json`, contentType: 'application/json; charset=utf-8', body: `${JSON.stringify(everything.data, null, 2)}\n` };
    }
    const { view, data } = everything;
    return { filename: `conversation-${id}.md`, contentType: 'text/markdown; charset=utf-8', body: markdown(view, branchRecords(data.messages, view.head), data.updatedAt) };
  }

  /** What the JSON export holds (every branch), as data; null when not the person's. */
  async exportData(accountId: string, id: string): Promise<ConversationData | null> {
    return (await this.everything(accountId, id))?.data ?? null;
  }

  private async everything(accountId: string, id: string): Promise<{ view: ConversationView; data: ConversationData } | null> {
    const view = await this.get(accountId, id);
    if (view === null) return null;
    const [records, score] = await Promise.all([
      this.sessions.records(id),
      this.redis.zScore(conversationIndexKeys(this.prefix, accountId).index, id),
    ]);
    const errors = new Map(view.messages.flatMap((message) => (message.error === undefined ? [] : [[message.seq, message.error] as const])));
    const messages = records.map((record) => {
      const error = record.source === 'human' ? errors.get(record.seq) : undefined;
      return error === undefined ? record : { ...record, error };
    });
    const updatedAt = new Date(score ?? Date.parse(view.session_start)).toISOString();
    return { view, data: { id, title: view.title, createdAt: view.session_start, updatedAt, head: view.head, messages } };
  }

  private async owns(accountId: string, id: string): Promise<boolean> {
    return isValidToken(id) && (await this.redis.zScore(conversationIndexKeys(this.prefix, accountId).index, id)) !== null;
  }

  /** Up to `count` index entries after `before`, newest first; equal scores in descending id order (as ZRANGE REV has them). */
  private async page(accountId: string, before: Cursor | undefined, count: number): Promise<Cursor[]> {
    const { index } = conversationIndexKeys(this.prefix, accountId);
    const read = async (max: number | string, extra: number) =>
      scoredMembersSchema.parse(await this.redis.zRangeWithScores(index, max, '-inf', { BY: 'SCORE', REV: true, LIMIT: { offset: 0, count: count + extra } })).map(
        ({ value, score }) => ({ id: value, score }),
      );
    if (before === undefined) return read('+inf', 0);
    // Entries with the cursor's own score come first, those already shown among them too.
    const ties = await this.redis.zCount(index, before.score, before.score);
    const entries = await read(before.score, ties);
    return entries.filter((entry) => entry.score < before.score || entry.id < before.id).slice(0, count);
  }

  /** Titles and creation times; undefined for an entry whose session is gone (see create). */
  private async summarize(accountId: string, entries: readonly Cursor[]): Promise<Array<ConversationSummary | undefined>> {
    if (entries.length === 0) return [];
    const { titles } = conversationIndexKeys(this.prefix, accountId);
    const [names, starts] = await Promise.all([
      this.redis.hmGet(titles, entries.map((entry) => entry.id)),
      Promise.all(entries.map((entry) => this.redis.hGet(this.sessions.keys(entry.id).session, 'start'))),
    ]);
    return entries.map((entry, index) => {
      const start = starts[index];
      if (start === undefined || start === null) return undefined;
      return { id: entry.id, title: names[index] ?? '', createdAt: start, updatedAt: new Date(entry.score).toISOString() };
    });
  }

  /** Which conversations contain `needle` (lowercase) in their title or any stored message. */
  private async matches(summaries: ReadonlyArray<ConversationSummary | undefined>, needle: string): Promise<boolean[]> {
    return Promise.all(
      summaries.map(async (summary) => {
        if (summary === undefined) return false;
        if (summary.title.toLowerCase().includes(needle)) return true;
        const records = await this.sessions.records(summary.id);
        return records.some((record) => record.msg.toLowerCase().includes(needle));
      }),
    );
  }
}

function markdown(view: ConversationView, shown: ReadonlyArray<MessageRecord & { error?: { message: string } }>, updatedAt: string): string {
  const lines = [`# ${view.title === '' ? 'Conversation' : view.title}`, '', `Started ${view.session_start}, last message ${updatedAt}.`, ''];
  for (const record of shown) {
    const who = record.source === 'human' ? view.name : 'Assistant';
    lines.push(`## ${who} · ${record.timestamp}`, '', record.msg, '');
    if (record.source === 'bot' && record.status === 'stopped') lines.push('_(stopped)_', '');
    if (record.error !== undefined) lines.push(`_(no answer: ${record.error.message})_`, '');
  }
  return lines.join('\n');
}
