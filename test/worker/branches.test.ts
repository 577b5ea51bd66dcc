/** The branch walk shared by the worker (prompt), the gateway (original API) and exports. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ancestry, branchRecords } from '../../src/contracts/branches.js';
import type { MessageRecord } from '../../src/contracts/protocol.js';

const human = (seq: number, parent?: number): MessageRecord => ({
  id: `h${seq}`, msg: `q${seq}`, timestamp: '', source: 'human', seq, ...(parent === undefined ? {} : { parent }),
});
const bot = (seq: number): MessageRecord => ({ id: `b${seq}`, msg: `a${seq}`, timestamp: '', source: 'bot', seq, status: 'done' });

test('the ancestry of a turn runs from the first turn of its branch down to it', () => {
  const records = [human(1, 0), bot(1), human(2, 1), bot(2), human(3, 1), human(4, 3)];
  assert.deepEqual(ancestry(records, 4), { turns: [1, 3, 4], complete: true });
  assert.deepEqual(ancestry(records, 2), { turns: [1, 2], complete: true });
  assert.deepEqual(ancestry(records, 0), { turns: [], complete: true });
});

test('a branch going further up than the records read is reported incomplete', () => {
  // Records 1..9 were not read (an older window): turn 12 follows 11, which follows 5.
  const records = [human(10, 9), human(11, 5), human(12, 11)];
  assert.deepEqual(ancestry(records, 12), { turns: [11, 12], complete: false });
  assert.deepEqual(ancestry(records, 99), { turns: [], complete: false });
});

test('branchRecords keeps questions and answers of the branch shown, in their order', () => {
  const records = [human(1, 0), bot(1), human(2, 1), bot(2), human(3, 1), bot(3)];
  assert.deepEqual(branchRecords(records, 3).map((record) => record.id), ['h1', 'b1', 'h3', 'b3']);
  assert.deepEqual(branchRecords(records, 2).map((record) => record.id), ['h1', 'b1', 'h2', 'b2']);
});
