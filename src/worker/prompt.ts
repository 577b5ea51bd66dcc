/**
 * What the model sees: the system prompt, then the conversation as role-tagged turns (never
 * "Human:/Bot:" text a user could imitate), ending with the message being answered. Only the
 * branch of that message counts: its ancestors, not the turns of other branches beside them.
 */
import { ancestry } from '../contracts/branches.js';
import type { MessageRecord } from '../contracts/protocol.js';
import type { ChatTurn } from '../providers/provider.js';

/**
 * The ancestors of `turn` that have an answer (done or stopped, with text), oldest first, then the
 * human message of `turn`.
 */
export function conversationFor(history: readonly MessageRecord[], turn: number, systemPrompt: string): ChatTurn[] {
  const humans = new Map<number, string>();
  const answers = new Map<number, string>();
  for (const record of history) {
    (record.source === 'human' ? humans : answers).set(record.seq, record.msg);
  }
  const turns: ChatTurn[] = systemPrompt === '' ? [] : [{ role: 'system', content: systemPrompt }];
  for (const seq of ancestry(history, turn).turns) {
    if (seq === turn) break;
    const answer = answers.get(seq);
    if (answer === undefined || answer === '') continue;
    turns.push({ role: 'user', content: humans.get(seq) ?? '' }, { role: 'assistant', content: answer });
  }
  turns.push({ role: 'user', content: humans.get(turn) ?? '' });
  return turns;
}
