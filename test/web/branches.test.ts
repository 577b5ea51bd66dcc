import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { branchPath, linearParents, newestLeaf, siblingsOf, type BranchNode } from '../../web/src/protocol/branches.js';
import {
  addLocalMessage,
  applyAccepted,
  applyBranch,
  applyEvent,
  applyRejection,
  fillUnknownTexts,
  replaceWithSession,
  stateFromSession,
  switchTarget,
  visibleTurns,
  type ChatState,
} from '../../web/src/protocol/chat-state.js';
import { parseServerFrame } from '../../web/src/protocol/server-frames.js';
import { toSessionView } from '../../web/src/protocol/session-api.js';
import type { HistoryMessage } from '../../web/src/protocol/types.js';
import { session } from './fakes.js';

const node = (seq: number, parent: number): BranchNode => ({ seq, parent });

/**
 * 1 ─ 2 ─ 3          (2 answered, then edited as 4; 4 regenerated as 6)
 *   ├ 4 ─ 5
 *   └ 6 ─ 7 ─ 8
 */
const TREE = [node(1, 0), node(2, 1), node(3, 2), node(4, 1), node(5, 4), node(6, 1), node(7, 6), node(8, 7)];

describe('branch tree', () => {
  it('draws the branch by walking from the head through the parents', () => {
    assert.deepEqual(branchPath(TREE, 3).map((turn) => turn.seq), [1, 2, 3]);
    assert.deepEqual(branchPath(TREE, 5).map((turn) => turn.seq), [1, 4, 5]);
    assert.deepEqual(branchPath(TREE, 8).map((turn) => turn.seq), [1, 6, 7, 8]);
    assert.deepEqual(branchPath(TREE, 6).map((turn) => turn.seq), [1, 6], 'a head in the middle shows the branch up to it');
    assert.deepEqual(branchPath(TREE, 0), [], 'head 0: nothing yet');
    assert.deepEqual(branchPath([], 3), []);
    assert.deepEqual(branchPath(TREE, 99), [], 'an unknown head shows nothing rather than a wrong branch');
  });

  it('stops at a parent it does not hold (trimmed history) and at a cycle (corrupt data)', () => {
    assert.deepEqual(branchPath([node(7, 6), node(8, 7)], 8).map((turn) => turn.seq), [7, 8]);
    assert.deepEqual(branchPath([node(1, 2), node(2, 1)], 2).map((turn) => turn.seq), [1, 2]);
    assert.deepEqual(branchPath([node(3, 3)], 3).map((turn) => turn.seq), [3]);
  });

  it('siblings are the turns with the same parent, oldest first, a turn being sent last', () => {
    const three = TREE.find((turn) => turn.seq === 4) as BranchNode;
    const versions = siblingsOf(TREE, three);
    assert.deepEqual(versions.all.map((turn) => turn.seq), [2, 4, 6]);
    assert.equal(versions.index, 1);
    const leaf = TREE.find((turn) => turn.seq === 8) as BranchNode;
    assert.deepEqual(siblingsOf(TREE, leaf), { all: [leaf], index: 0 });
    const pending: BranchNode = { seq: undefined, parent: 1 };
    const withPending = [pending, ...TREE];
    assert.deepEqual(siblingsOf(withPending, pending).all.map((turn) => turn.seq), [2, 4, 6, undefined]);
    assert.equal(siblingsOf(withPending, pending).index, 3);
    const unknown: BranchNode = { seq: 9, parent: undefined };
    assert.deepEqual(siblingsOf([...TREE, unknown], unknown), { all: [unknown], index: 0 }, 'no parent known: no versions');
  });

  it('a switch lands on the newest turn under the chosen version', () => {
    assert.equal(newestLeaf(TREE, 2), 3);
    assert.equal(newestLeaf(TREE, 4), 5);
    assert.equal(newestLeaf(TREE, 6), 8);
    assert.equal(newestLeaf(TREE, 8), 8);
    assert.equal(newestLeaf(TREE, 1), 8, 'under the first turn: the newest of all');
    assert.equal(newestLeaf([node(1, 0), node(2, 2)], 1), 1, 'a self-parented turn does not loop');
  });

  it('gives a history without parents the one linear branch it had', () => {
    assert.deepEqual([...linearParents([3, 1, 2])], [[1, 0], [2, 1], [3, 2]]);
    assert.deepEqual([...linearParents([])], []);
  });
});

const human = (seq: number, parent: number | undefined, msg = `q${seq}`): HistoryMessage => ({
  id: `h${seq}`,
  msg,
  timestamp: `t${seq}`,
  source: 'human',
  seq,
  ...(parent === undefined ? {} : { parent }),
});
const bot = (seq: number, msg = `a${seq}`): HistoryMessage => ({ id: `b${seq}`, msg, timestamp: `t${seq}b`, source: 'bot', seq, status: 'done' });

function treeState(head: number): ChatState {
  return stateFromSession(
    session({
      messages: [human(1, 0), bot(1), human(2, 1), bot(2), human(3, 1, 'q2 edited'), bot(3), human(4, 3), bot(4)],
      head,
      last_event_id: '50-0',
    }),
  );
}

const shown = (state: ChatState) => visibleTurns(state).map((turn) => turn.seq ?? turn.key);

describe('chat state with branches', () => {
  it('shows the branch of the head; reload (a new snapshot) keeps the branch the server says', () => {
    assert.deepEqual(shown(treeState(4)), [1, 3, 4]);
    assert.deepEqual(shown(treeState(2)), [1, 2]);
    assert.equal(treeState(2).turns.length, 4, 'every branch is held, one is shown');
    const reloaded = replaceWithSession(treeState(4), session({ messages: [human(1, 0), bot(1), human(2, 1), bot(2), human(3, 1)], head: 2 }));
    assert.deepEqual(shown(reloaded), [1, 2]);
  });

  it('treats a history without parents or head as the one linear branch (older servers)', () => {
    const state = stateFromSession(session({ messages: [human(1, undefined), bot(1), human(2, undefined), human(3, undefined)] }));
    assert.equal(state.head, 3);
    assert.deepEqual(shown(state), [1, 2, 3]);
    assert.deepEqual(state.turns.map((turn) => turn.parent), [0, 1, 2]);
    assert.equal(stateFromSession(session({ messages: [human(1, 0)], head: 7 })).head, 1, 'a head not in the history falls back to the newest turn');
  });

  it('a new message follows the head and becomes it when accepted (with or without a parent in the frame)', () => {
    let state = addLocalMessage(treeState(2), 'c-1', 'next');
    assert.deepEqual(shown(state), [1, 2, 'c-1'], 'shown at the end while sending');
    state = applyAccepted(state, { id: 'h5', seq: 5, timestamp: 't5', clientId: 'c-1', parent: 2 });
    assert.equal(state.head, 5);
    assert.deepEqual(shown(state), [1, 2, 5]);
    state = applyAccepted(addLocalMessage(state, 'c-2', 'old server'), { id: 'h6', seq: 6, timestamp: 't6', clientId: 'c-2' });
    assert.deepEqual(shown(state), [1, 2, 5, 6], 'no parent in the frame: it followed the head');
  });

  it('an edit shows in place of the turn it replaces, as its newest version, until accepted', () => {
    let state = addLocalMessage(treeState(4), 'c-1', 'q3 again', { kind: 'edit', of: 3 });
    assert.deepEqual(shown(state), [1, 'c-1']);
    const pending = visibleTurns(state).at(-1);
    assert.ok(pending);
    assert.deepEqual(siblingsOf(state.turns, pending).all.map((turn) => turn.seq), [2, 3, undefined]);
    state = applyAccepted(state, { id: 'h5', seq: 5, timestamp: 't5', clientId: 'c-1', parent: 1 });
    state = applyBranch(state, 5);
    assert.deepEqual(shown(state), [1, 5]);
    assert.equal(visibleTurns(state).at(-1)?.intent, undefined);
  });

  it('a version of an unknown turn is not made', () => {
    const state = treeState(4);
    assert.equal(addLocalMessage(state, 'c-9', 'x', { kind: 'edit', of: 42 }), state);
  });

  it('a rejected edit stays visible with its error until the branch changes', () => {
    let state = addLocalMessage(treeState(4), 'c-1', 'too long', { kind: 'edit', of: 4 });
    state = applyRejection(state, 'c-1', { code: 'message_too_long', message: 'Too long.' });
    assert.deepEqual(shown(state), [1, 3, 'c-1']);
    state = applyBranch(state, 2);
    assert.deepEqual(shown(state), [1, 2]);
    assert.equal(state.turns.some((turn) => turn.clientId === 'c-1'), false);
  });

  it('a switch targets the newest turn under the chosen version', () => {
    const state = treeState(2);
    assert.equal(switchTarget(state, 3), 4);
    assert.equal(switchTarget(state, 2), 2);
    assert.deepEqual(shown(applyBranch(state, switchTarget(state, 3))), [1, 3, 4]);
  });

  it('answer events from another window: a new turn follows the head; its history fills in the parent', () => {
    let state = applyEvent(treeState(2), { type: 'start', seq: 5, attempt: 1, eventId: '60-0' });
    assert.equal(state.head, 5);
    assert.deepEqual(shown(state), [1, 2, 5]);
    state = fillUnknownTexts(state, session({ messages: [human(1, 0), human(2, 1), human(3, 1), human(4, 3), human(5, 4, 'from elsewhere')] }));
    const five = state.turns.find((turn) => turn.seq === 5);
    assert.equal(five?.parent, 4);
    assert.equal(five?.text, 'from elsewhere');
    const old = applyEvent(treeState(4), { type: 'delta', seq: 2, text: '!', eventId: '61-0' });
    assert.equal(old.head, 4, 'an event of an older turn does not move the head');
  });
});

describe('branch wire parsing', () => {
  it('reads parent, head and title from a session body; a body with an impossible one is refused as a whole', () => {
    const body = { token: 't', name: 'Ada', session_start: 's', head: 3, title: 'Trip', messages: [human(1, 0), human(2, 1), human(3, 1)] };
    const view = toSessionView(body);
    assert.equal(view?.head, 3);
    assert.equal(view?.title, 'Trip');
    assert.deepEqual(view?.messages.map((message) => message.parent), [0, 1, 1]);
    for (const parent of [2, -1, 'x', 1.5]) {
      assert.equal(toSessionView({ ...body, messages: [human(1, 0), { ...human(2, 1), parent }] }), undefined, `parent ${String(parent)}`);
    }
    assert.equal(toSessionView({ ...body, head: 1.5 }), undefined);
    assert.equal(toSessionView({ token: 't', name: 'Ada', session_start: 's', messages: [] })?.head, 0, 'POST /token names no head: before the first turn');
  });

  it('parses accepted with parent and the branch frame; malformed ones are dropped', () => {
    assert.deepEqual(parseServerFrame(JSON.stringify({ type: 'accepted', id: 'h', seq: 4, timestamp: 't', clientId: 'c-1', parent: 1 })), {
      type: 'accepted',
      id: 'h',
      seq: 4,
      timestamp: 't',
      clientId: 'c-1',
      parent: 1,
    });
    assert.equal(parseServerFrame(JSON.stringify({ type: 'accepted', id: 'h', seq: 4, timestamp: 't', parent: 4 })), undefined, 'a turn follows an older one');
    assert.deepEqual(parseServerFrame(JSON.stringify({ type: 'branch', head: 0, eventId: '5-1' })), { type: 'branch', head: 0, eventId: '5-1' });
    for (const head of [-1, 1.5, '7', null, undefined]) assert.equal(parseServerFrame(JSON.stringify({ type: 'branch', head, eventId: '5-1' })), undefined);
    assert.deepEqual(parseServerFrame(JSON.stringify({ type: 'branch', head: 3, eventId: '5-1' })), { type: 'branch', head: 3, eventId: '5-1' });
    assert.equal(parseServerFrame(JSON.stringify({ type: 'branch', head: 3 })), undefined, 'branch changes come from the event stream: always with their id');
    assert.equal(parseServerFrame(JSON.stringify({ type: 'branch', head: 3, eventId: 'x' })), undefined);
  });
});
