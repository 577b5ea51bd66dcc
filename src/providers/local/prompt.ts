/**
 * The prompt for node-llama-cpp, and how much answer it leaves room for.
 *
 * Context overflow: node-llama-cpp's own answer to a prompt longer than the context is to cut text
 * out of the conversation (even out of the user's message) and answer anyway, and a reply that
 * reaches the end of the context fails with an error after part of it was streamed. Neither is what
 * a chat user expects, so the prompt is measured first with the model's chat template and tokenizer:
 * if it leaves no room for an answer the request fails with `model_context_overflow` before any
 * token; otherwise the answer is capped at the room left, and ends like one that reached maxTokens.
 */
import type { ChatHistoryItem, LlamaContext } from 'node-llama-cpp';
import { ErrorCodes, ModelError } from '../../contracts/errors.js';
import type { ChatTurn } from '../provider.js';
import type { Loaded } from './runtime.js';

/** What the model answers with at least; a prompt leaving less room than this is an overflow. */
const MIN_ANSWER_TOKENS = 16;

export interface Prompt {
  readonly history: ChatHistoryItem[];
  readonly prompt: string;
}

/** `[system?, ...history, user]` → node-llama-cpp's chat history plus the prompt to answer. */
export function toChatHistory(turns: readonly ChatTurn[]): Prompt {
  const last = turns.at(-1);
  if (last === undefined || last.role !== 'user') {
    throw new ModelError(ErrorCodes.modelFailed, 'A conversation sent to the model must end with a user turn.');
  }
  const history = turns.slice(0, -1).map((turn): ChatHistoryItem => {
    if (turn.role === 'assistant') return { type: 'model', response: [turn.content] };
    return { type: turn.role, text: turn.content };
  });
  return { history, prompt: last.content };
}

/** Room node-llama-cpp frees when a context fills up; we only need it to predict when it would cut. */
export function contextShiftSize(context: LlamaContext): number {
  return Math.max(1, Math.floor(context.contextSize / 10));
}

/** Tokens the answer may use (at most `maxTokens`); throws model_context_overflow when the prompt leaves too few. */
export function answerRoom(loaded: Loaded, { history, prompt }: Prompt, maxTokens: number): number {
  const { contextText } = loaded.chatWrapper.generateContextState({
    chatHistory: [...history, { type: 'user', text: prompt }, { type: 'model', response: [] }],
  });
  const promptTokens = contextText.tokenize(loaded.model.tokenizer).length;
  const contextSize = loaded.context.contextSize;
  // node-llama-cpp starts cutting the conversation when the prompt leaves less than one context
  // shift free, and shifts (failing, when only the answer could go) once generation reaches
  // contextSize - 1; its maxTokens check comes first, so an answer of exactly `room` never shifts.
  const room = contextSize - 1 - promptTokens;
  if (promptTokens > contextSize - contextShiftSize(loaded.context) || room < MIN_ANSWER_TOKENS) {
    throw new ModelError(
      ErrorCodes.modelContextOverflow,
      `The conversation needs ${promptTokens} tokens but the model's context holds ${contextSize} (with room for an answer). ` +
        'Send a shorter message, or raise LLM_CONTEXT_SIZE and keep LLM_HISTORY_TOKENS + LLM_MAX_TOKENS below it.',
    );
  }
  return Math.min(maxTokens, room);
}
