/**
 * The conversation as the UI shows it, and the pure functions that move it forward. A turn is a
 * human message plus what became of it (queued, answered token by token, stopped, failed). The
 * functions never mutate: a changed turn is a new object, so React can skip unchanged ones.
 */
import { compareEventIds } from '../../../src/contracts/event-ids.js';
import { branchPath, linearParents, newestLeaf, ROOT } from './branches.js';
import type { SessionView, StoredEvent, TurnFailure } from './types.js';

export type TurnStatus =
  /** Not yet accepted by the server (maybe offline); it is resent after a reconnect. */
  | 'sending'
  /** Stored and waiting for its answer. */
  | 'queued'
  | 'answering'
  | 'done'
  | 'stopped'
  | 'error';

export interface Turn {
  /** Stable identity for the UI: the clientId of a message sent here, else the message id. */
  readonly key: string;
  /** The turn number the server gave the message; undefined until accepted. */
  readonly seq: number | undefined;
  readonly clientId: string | undefined;
  readonly text: string;
  /** Server timestamp of the human message (ISO), when known. */
  readonly sentAt: string | undefined;
  readonly status: TurnStatus;
  /** The answer so far: the deltas since the turn's latest `start`. */
  readonly answer: string;
  readonly answeredAt?: string;
  /** Why the turn failed; `ref` (a failed answer's) is quoted to the operator, who finds the detail in the log. */
  readonly error?: TurnFailure;
  /** The error is a rejection of the message itself: nothing was stored on the server. */
  readonly rejected?: boolean;
  /** Seen an answer event for a turn whose message this client never saw (sent elsewhere). */
  readonly textUnknown?: boolean;
  readonly stopRequested?: boolean;
  /** While queued: the session's place in line for a worker and the estimated wait (queued frames). */
  readonly place?: QueuePlace;
  /** The turn this one follows (0 = the root); undefined for a new message until it is accepted. */
  readonly parent: number | undefined;
  /** A new version of turn `of`, not yet accepted (an edit or a regenerate sent from here). */
  readonly intent?: BranchIntent;
}

export interface BranchIntent {
  readonly kind: 'edit' | 'regenerate';
  readonly of: number;
}

export interface QueuePlace {
  readonly position: number;
  readonly etaMs?: number;
}

export interface ChatState {
  readonly turns: readonly Turn[];
  /** The newest answer event applied: resume after it; anything not newer is a duplicate. */
  readonly lastEventId: string;
  /** The newest turn of the branch shown (0 = none yet). `turns` holds every branch. */
  readonly head: number;
}

export const EMPTY_STATE: ChatState = { turns: [], lastEventId: '0', head: ROOT };

export function isUnfinished(turn: Turn): boolean {
  return turn.status === 'sending' || turn.status === 'queued' || turn.status === 'answering';
}

/** Builds the conversation from a `refresh_token` snapshot (history grouped by turn). */
export function stateFromSession(session: SessionView): ChatState {
  const bySeq = new Map<number, Turn>();
  const humans = session.messages.filter((message) => message.source === 'human');
  const linear = linearParents(humans.map((message) => message.seq));
  for (const message of humans) {
    const error = message.error === undefined ? undefined : { ...message.error };
    bySeq.set(message.seq, {
      key: message.id,
      seq: message.seq,
      clientId: undefined,
      text: message.msg,
      sentAt: message.timestamp,
      // Neither answer nor error yet: queued or being answered. A replayed `start` says which.
      status: error === undefined ? 'queued' : 'error',
      answer: '',
      parent: message.parent ?? linear.get(message.seq),
      ...(error === undefined ? {} : { error }),
    });
  }
  for (const message of session.messages) {
    if (message.source !== 'bot') continue;
    const turn = bySeq.get(message.seq);
    if (turn === undefined) continue;
    bySeq.set(message.seq, {
      ...turn,
      status: message.status === 'stopped' ? 'stopped' : 'done',
      answer: message.msg,
      answeredAt: message.timestamp,
    });
  }
  const turns = [...bySeq.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  const head = session.head !== undefined && bySeq.has(session.head) ? session.head : (turns.at(-1)?.seq ?? ROOT);
  return { turns, lastEventId: session.last_event_id, head };
}

/**
 * A fresh snapshot replaces what the server knows; messages of this client that the server has
 * not stored (unsent, or rejected) are kept after it, so nothing typed is lost.
 */
export function replaceWithSession(state: ChatState, session: SessionView): ChatState {
  const fresh = stateFromSession(session);
  const localOnly = state.turns.filter((turn) => turn.seq === undefined);
  return { ...fresh, turns: [...fresh.turns, ...localOnly] };
}

export function addLocalMessage(state: ChatState, clientId: string, text: string, intent?: BranchIntent): ChatState {
  const turn: Turn = { key: clientId, seq: undefined, clientId, text, sentAt: undefined, status: 'sending', answer: '', parent: undefined };
  if (intent === undefined) return { ...state, turns: [...state.turns, turn] };
  const of = state.turns.find((candidate) => candidate.seq === intent.of);
  if (of?.parent === undefined) return state;
  return { ...state, turns: [...state.turns, { ...turn, parent: of.parent, intent }] };
}

export interface Accepted {
  readonly id: string;
  readonly seq: number;
  readonly timestamp: string;
  readonly clientId?: string | undefined;
  /** The turn it follows; servers without branches leave it out. */
  readonly parent?: number | undefined;
}

/** The server stored a message as turn `seq`. */
export function applyAccepted(state: ChatState, accepted: Accepted): ChatState {
  const localIndex = state.turns.findIndex((turn) => turn.clientId !== undefined && turn.clientId === accepted.clientId);
  const seqIndex = state.turns.findIndex((turn) => turn.seq === accepted.seq);
  const local = state.turns[localIndex];
  if (local === undefined) return state;
  const existing = state.turns[seqIndex];
  if (existing === undefined || seqIndex === localIndex) {
    const status = local.status === 'sending' || local.status === 'error' ? 'queued' : local.status;
    // Every new turn joins the branch shown: a message follows the head, an edit or a regenerate moves it.
    const parent = accepted.parent ?? local.parent ?? state.head;
    const updated: Turn = { ...local, seq: accepted.seq, sentAt: accepted.timestamp, status, parent, intent: undefined, error: undefined, rejected: undefined };
    return { ...state, turns: replaceAt(state.turns, localIndex, updated), head: accepted.seq };
  }
  // The turn is already shown: from the history (a resend after reload, accepted once) or from
  // answer events that overtook the `accepted` frame. Keep one turn, with the text known here.
  const merged: Turn = { ...existing, key: local.key, clientId: local.clientId, text: local.text, textUnknown: undefined, sentAt: accepted.timestamp };
  const turns = replaceAt(state.turns, seqIndex, merged).filter((_, index) => index !== localIndex);
  return { ...state, turns };
}

/** The session waits for a worker: its turn `seq` is at `position` in line (the turns after it wait behind it). */
export function applyQueued(state: ChatState, seq: number, place: QueuePlace): ChatState {
  return updateTurn(state, (turn) => turn.seq === seq && turn.status === 'queued', (turn) => ({ ...turn, place }));
}

/** The server refused a message (empty, too long, too many pending, rate limited, busy): nothing was stored. */
export function applyRejection(state: ChatState, clientId: string, error: TurnFailure): ChatState {
  return updateTurn(state, (turn) => turn.clientId === clientId && turn.seq === undefined, (turn) => ({
    ...turn,
    status: 'error',
    error,
    rejected: true,
  }));
}

export function markStopRequested(state: ChatState, seq: number): ChatState {
  return updateTurn(state, (turn) => turn.seq === seq, (turn) => ({ ...turn, stopRequested: true }));
}

/**
 * Applies one answer event. Events not newer than the last one applied are duplicates (a resume
 * overlapping live delivery, a replay after reconnect) and change nothing.
 */
export function applyEvent(state: ChatState, event: StoredEvent): ChatState {
  if (compareEventIds(event.eventId, state.lastEventId) <= 0) return state;
  const withTurn = ensureTurn(state, event.seq);
  const turns = withTurn.turns.map((turn) => (turn.seq === event.seq ? applyToTurn(turn, event) : turn));
  return { ...withTurn, turns, lastEventId: event.eventId };
}

function applyToTurn(turn: Turn, event: StoredEvent): Turn {
  switch (event.type) {
    case 'start':
      // A new attempt (another worker took over) rewrites the answer from scratch.
      return { ...turn, status: 'answering', answer: '', error: undefined };
    case 'delta':
      return { ...turn, status: 'answering', answer: turn.answer + event.text };
    case 'done':
      return { ...turn, status: 'done', answeredAt: event.timestamp, stopRequested: undefined };
    case 'stopped':
      return { ...turn, status: 'stopped', answeredAt: event.timestamp, stopRequested: undefined };
    case 'error':
      return {
        ...turn,
        status: 'error',
        error: { code: event.code, message: event.message, ...(event.ref === undefined ? {} : { ref: event.ref }) },
        stopRequested: undefined,
      };
  }
}

/**
 * Makes sure a turn with this seq exists. An event can name a turn this client has not seen
 * accepted (sent from another tab, or the event overtook the `accepted` frame): it gets a
 * placeholder in seq order, before messages still waiting to be accepted.
 */
function ensureTurn(state: ChatState, seq: number): ChatState {
  if (state.turns.some((turn) => turn.seq === seq)) return state;
  // Most likely a message from another window, which follows the branch shown; the history
  // fetched for its text (fillUnknownTexts) says for sure.
  const newer = seq > state.head;
  const placeholder: Turn = {
    key: `seq-${seq}`,
    seq,
    clientId: undefined,
    text: '',
    sentAt: undefined,
    status: 'queued',
    answer: '',
    textUnknown: true,
    parent: newer ? state.head : undefined,
  };
  const before = state.turns.findIndex((turn) => (turn.seq !== undefined && turn.seq > seq) || turn.status === 'sending');
  const at = before === -1 ? state.turns.length : before;
  return { ...state, turns: [...state.turns.slice(0, at), placeholder, ...state.turns.slice(at)], head: newer ? seq : state.head };
}

function updateTurn(state: ChatState, match: (turn: Turn) => boolean, change: (turn: Turn) => Turn): ChatState {
  let changed = false;
  const turns = state.turns.map((turn) => {
    if (!match(turn)) return turn;
    changed = true;
    return change(turn);
  });
  return changed ? { ...state, turns } : state;
}

function replaceAt<T>(items: readonly T[], index: number, item: T): T[] {
  return items.map((current, position) => (position === index ? item : current));
}

/** The turn a Stop should end: the one being answered, else the next one waiting. */
export function stoppableTurn(state: ChatState): Turn | undefined {
  return (
    state.turns.find((turn) => turn.status === 'answering' && turn.seq !== undefined) ??
    state.turns.find((turn) => turn.status === 'queued' && turn.seq !== undefined)
  );
}

/** Fills in the text of turns known only from their answer events, from a history snapshot. */
export function fillUnknownTexts(state: ChatState, session: SessionView): ChatState {
  return updateTurn(state, (turn) => turn.textUnknown === true, (turn) => {
    const human = session.messages.find((message) => message.source === 'human' && message.seq === turn.seq);
    if (human === undefined) return turn;
    return { ...turn, text: human.msg, sentAt: human.timestamp, textUnknown: undefined, parent: human.parent ?? turn.parent };
  });
}

/**
 * A branch event from the session's stream: applied once, like an answer event (a replay of one
 * already applied changes nothing).
 */
export function applyBranchEvent(state: ChatState, head: number, eventId: string | undefined): ChatState {
  if (eventId === undefined) return applyBranch(state, head);
  if (compareEventIds(eventId, state.lastEventId) <= 0) return state;
  return { ...applyBranch(state, head), lastEventId: eventId };
}

/** The server says which branch is shown now. A new version that could not be sent is dropped with the view it made. */
export function applyBranch(state: ChatState, head: number): ChatState {
  const turns = state.turns.filter((turn) => !(turn.intent !== undefined && turn.rejected === true));
  if (head === state.head && turns.length === state.turns.length) return state;
  return { ...state, turns, head };
}

/** The branch a switch to turn `seq` shows: the newest turn under it (the server decides the same way). */
export function switchTarget(state: ChatState, seq: number): number {
  return newestLeaf(state.turns, seq);
}

/**
 * The turns to show, oldest first: the branch from the head up to the root, then the messages
 * not yet accepted. A new version being sent shows in place of the turn it replaces, on the
 * branch up to its parent.
 */
export function visibleTurns(state: ChatState): Turn[] {
  const local = state.turns.filter((turn) => turn.seq === undefined);
  const lastBranching = local.findLastIndex((turn) => turn.intent !== undefined);
  const branching = local[lastBranching];
  if (branching?.parent !== undefined) return [...branchPath(state.turns, branching.parent), ...local.slice(lastBranching)];
  return [...branchPath(state.turns, state.head), ...local.filter((turn) => turn.intent === undefined)];
}
