/**
 * What the model sees: the system prompt, then the conversation as role-tagged turns (never
 * "Human:/Bot:" text a user could imitate), ending with the message being answered.
 */
import type { MessageRecord } from '../contracts/protocol.js';
import type { ChatTurn } from '../providers/provider.js';

/** Turns before `turn` that have an answer (done or stopped), then the human message of `turn`. */
export function conversationFor(history: readonly MessageRecord[], turn: number, systemPrompt: string): ChatTurn[] {
  const humans = new Map<number, string>();
  const answers = new Map<number, string>();
  for (const record of history) {
    (record.source === 'human' ? humans : answers).set(record.seq, record.msg);
  }
  const turns: ChatTurn[] = systemPrompt === '' ? [] : [{ role: 'system', content: systemPrompt }];
  for (const [seq, question] of [...humans].sort(([a], [b]) => a - b)) {
    if (seq >= turn) break;
    const answer = answers.get(seq);
    if (answer === undefined || answer === '') continue;
    turns.push({ role: 'user', content: question }, { role: 'assistant', content: answer });
  }
  turns.push({ role: 'user', content: humans.get(turn) ?? '' });
  return turns;
}
