/**
 * Branches of a conversation. Turns form a tree: each human message names the turn it follows
 * (`parent`, 0 for the first of the conversation); an edit or a regenerate adds a turn beside
 * another (same parent), so the old branch stays. The session's `head` is the newest turn of the
 * branch shown; walking up the parents from it gives that branch. Plain functions over records,
 * shared by the gateway, the worker and (types only) the web.
 */
import { parentOf, type MessageRecord } from './protocol.js';

export interface Ancestry {
  /** Turns from the first of the branch down to the given one (inclusive), in order. */
  readonly turns: number[];
  /**
   * False when the walk reached a turn whose question is not among the records (older than the
   * records read): the branch goes further up than `turns` shows.
   */
  readonly complete: boolean;
}

/** The branch ending at `turn`: that turn and its ancestors, oldest first. */
export function ancestry(records: readonly Pick<MessageRecord, 'source' | 'seq' | 'parent'>[], turn: number): Ancestry {
  const parents = new Map<number, number>();
  for (const record of records) if (record.source === 'human') parents.set(record.seq, parentOf(record));
  const turns: number[] = [];
  let current = turn;
  while (current > 0) {
    const parent = parents.get(current);
    if (parent === undefined) return { turns: turns.reverse(), complete: false };
    turns.push(current);
    // Parents are always older turns (the accept script assigns them so); anything else is a
    // damaged record, and the walk stops rather than loop.
    if (parent >= current) break;
    current = parent;
  }
  return { turns: turns.reverse(), complete: true };
}

/** The records of the branch ending at `head` (questions and their answers), in turn order. */
export function branchRecords<T extends Pick<MessageRecord, 'source' | 'seq' | 'parent'>>(records: readonly T[], head: number): T[] {
  const shown = new Set(ancestry(records, head).turns);
  return records.filter((record) => shown.has(record.seq));
}
