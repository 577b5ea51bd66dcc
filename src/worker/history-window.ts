/**
 * The history window: which turns of a conversation the model gets to see. A model's context is
 * finite and every turn costs prompt-processing time, so we keep the newest turns that fit a token
 * budget. Turns are never cut in half (a half sentence misleads the model more than a missing one),
 * the system prompt and the message being answered are always kept, and history is dropped in whole
 * exchanges so the window never opens with an answer whose question is gone (several chat
 * templates reject a conversation that starts with the assistant).
 */
import type { ChatTurn } from '../providers/provider.js';

/**
 * Tokens a chat template adds around each turn's text. ChatML (Qwen) wraps a turn in
 * `<|im_start|>role\n … <|im_end|>\n` (5 tokens), Llama 3 in `<|start_header_id|>role<|end_header_id|>\n\n
 * … <|eot_id|>` (5 tokens); 8 leaves a margin for templates with longer role markers, so the window
 * errs on the side of fitting.
 */
export const TURN_OVERHEAD_TOKENS = 8;

/**
 * Input: `[system?, ...history, lastTurn]` (the last turn is the user's new message).
 * Output: the same shape with the oldest history exchanges removed until the total fits
 * `budgetTokens`. When even the system prompt and the last turn exceed the budget they are
 * returned alone: the provider, which knows the real context size, decides whether that fits.
 */
export function fitHistory(
  turns: readonly ChatTurn[],
  budgetTokens: number,
  countTokens: (text: string) => number,
): ChatTurn[] {
  const last = turns.at(-1);
  if (last === undefined) return [];
  const first = turns[0];
  const system = first !== undefined && first.role === 'system' && turns.length > 1 ? first : undefined;
  const history = turns.slice(system === undefined ? 0 : 1, -1);
  const cost = (turn: ChatTurn): number => countTokens(turn.content) + TURN_OVERHEAD_TOKENS;

  let used = cost(last) + (system === undefined ? 0 : cost(system));
  const kept: ChatTurn[][] = [];
  for (const exchange of exchangesNewestFirst(history)) {
    const exchangeCost = exchange.reduce((sum, turn) => sum + cost(turn), 0);
    // Stop at the first exchange that does not fit: skipping it and keeping older ones would leave a
    // hole in the conversation the model cannot know about.
    if (used + exchangeCost > budgetTokens) break;
    used += exchangeCost;
    kept.unshift(exchange);
  }
  return [...(system === undefined ? [] : [system]), ...kept.flat(), last];
}

/**
 * Splits history into exchanges, each starting at a user turn and running up to the next one
 * (user, assistant; or a lone user turn whose answer failed). Answers before the first user turn
 * belong to no question and are left out, so a window never starts with the assistant.
 */
function exchangesNewestFirst(history: readonly ChatTurn[]): ChatTurn[][] {
  const exchanges: ChatTurn[][] = [];
  let current: ChatTurn[] | undefined;
  for (const turn of history) {
    if (turn.role === 'user') {
      current = [turn];
      exchanges.push(current);
    } else if (current !== undefined) {
      current.push(turn);
    }
  }
  return exchanges.reverse();
}
