/**
 * Hostile input on every conversation endpoint (issue 13), in the style of the fuzz suite: empty,
 * huge, malformed, binary and hostile bodies, queries and ids, seeded so a run can be repeated.
 * Every refusal is a 4xx with {"detail", "code"}, nothing is a 5xx, nothing of the person's
 * conversations changes, and the gateway keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Browser, type Reply } from '../support/browser.js';
import { createSession } from '../support/client.js';
import { Picker, seededRandom } from '../support/fuzz.js';
import { startSystem, type TestSystem } from '../support/system.js';

const SEED = Number(process.env.FUZZ_SEED ?? 13);
const ROUNDS = Number(process.env.FUZZ_SIZE ?? 150);
let system: TestSystem;

before(async () => {
  system = await startSystem({ workers: 0 });
});
after(async () => {
  await system.stop();
});

const IDS = ['', 'x', '..%2F..%2Fetc%2Fpasswd', '%00', '*', '%7B*%7D', 'queue', '00000000-0000-4000-8000-000000000000', 'A'.repeat(5000), '%F0%9F%98%80', '__proto__', 'constructor', '%E0%A4%A'];
const BODIES: Array<string | Uint8Array<ArrayBuffer>> = [
  '', '{', '[]', 'null', '1', '"title"', '{"title":null}', '{"title":1}', '{"title":""}', '{"title":"   "}', '{"title":"\\ud800"}',
  '{"title":"bell\\u0007"}', '{"title":"line\\nbreak"}', JSON.stringify({ title: 'x'.repeat(201) }), JSON.stringify({ title: 'x'.repeat(70_000) }),
  '{"title":"ok","extra":1}', '{"__proto__":{"title":"polluted"}}', '{"constructor":{"prototype":{"title":"x"}}}', `${'['.repeat(5000)}${']'.repeat(5000)}`,
  new Uint8Array([0x7b, 0xff, 0xfe, 0x00, 0x7d]), new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
];
const QUERIES = ['?q=', `?q=${'x'.repeat(201)}`, '?q[]=1', '?q=%', '?limit=0', '?limit=-1', '?limit=201', '?limit=1.5', '?limit=abc', '?limit=99999999999', '?before=', '?before=x', '?before=1:not-a-uuid', '?before=99999999999999999:00000000-0000-4000-8000-000000000000', '?before[]=1', '?format=pdf', '?format=', '?format[]=json', '?q=%00&limit=1'];
const CONTENT_TYPES = ['application/json', 'text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', ''];

/** Every byte of the text's UTF-8 as %XX (lone surrogates become U+FFFD, as any client would send them). */
function percentEncoded(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
}

test(`hostile input on every conversation endpoint (seed ${SEED}, ${ROUNDS} rounds): 4xx with a code, never a 5xx, nothing changed`, async () => {
  const pick = new Picker(seededRandom(SEED));
  const ada = new Browser(system.baseUrl);
  await ada.signUp(`hostile${Date.now()}`);
  const mine = await ada.post('/api/v1/conversations', { title: 'keep me' }, { csrf: true });
  const id = String(mine.body?.id);
  const anonymous = (await createSession(system.baseUrl)).token;
  const before = await ada.call('/api/v1/conversations');
  const tally: Record<string, number> = {};
  const violations: string[] = [];
  const check = (label: string, reply: Reply, allowed: readonly number[]) => {
    tally[reply.status] = (tally[reply.status] ?? 0) + 1;
    if (reply.status >= 500) violations.push(`${label} → ${reply.status} ${reply.text.slice(0, 200)}`);
    else if (!allowed.includes(reply.status)) violations.push(`${label} → unexpected ${reply.status} ${reply.text.slice(0, 200)}`);
    else if (reply.status >= 400 && (typeof reply.body?.detail !== 'string' || typeof reply.body.code !== 'string')) violations.push(`${label} → ${reply.status} without detail and code: ${reply.text.slice(0, 200)}`);
  };
  for (let round = 0; round < ROUNDS; round += 1) {
    // IDS are written as they go on the wire (some are broken %-escapes on purpose).
    const target = pick.one([...IDS, anonymous, `${id}x`, id.toUpperCase(), percentEncoded(pick.text(pick.int(20)))]);
    const body = pick.one(BODIES);
    const headers = { 'content-type': pick.one(CONTENT_TYPES) };
    const method = pick.one(['GET', 'POST', 'PATCH', 'DELETE', 'PUT']);
    const path = pick.one([`/api/v1/conversations${pick.one(QUERIES)}`, `/api/v1/conversations/${target}`, `/api/v1/conversations/${target}/export${pick.one(QUERIES)}`, `/api/v1/conversations/${id}${pick.chance(0.5) ? '/export' : ''}${pick.one(QUERIES)}`]);
    const withBody = method !== 'GET' && method !== 'DELETE';
    const reply = await ada.call(path, { method, csrf: pick.chance(0.8), headers, ...(withBody ? { body } : {}) });
    const label = `${method} ${path.slice(0, 120)} ${withBody ? String(body).slice(0, 60) : ''}`;
    // Valid by chance: a listing, reading/exporting the person's own conversation. Never: a change to it.
    const onMine = path.startsWith(`/api/v1/conversations/${id}`);
    const okStatuses = method === 'GET' && (onMine || path.startsWith('/api/v1/conversations?')) ? [200, 400, 404, 414] : method === 'POST' && path.startsWith('/api/v1/conversations?') ? [201, 400, 403, 413, 414, 415] : [400, 403, 404, 405, 413, 414, 415];
    if (method === 'DELETE' && onMine) continue; // a valid delete of the person's own: not hostile
    if (method === 'PATCH' && onMine && !path.includes('/export')) {
      // Only hostile titles here: a valid one would rename it, as asked.
      if (typeof body === 'string' && /^\{"title":"ok"/.test(body)) continue;
    }
    check(label, reply, okStatuses);
  }
  console.log(`CONVERSATION FUZZ ${JSON.stringify({ seed: SEED, rounds: ROUNDS, statuses: tally })}`);
  assert.deepEqual(violations, []);
  const after = await ada.call('/api/v1/conversations?limit=200');
  const kept = (after.body?.conversations as Array<{ id: string; title: string }>).find((each) => each.id === id);
  assert.equal(kept?.title, 'keep me', 'the conversation was not renamed or deleted by any of it');
  assert.ok((after.body?.conversations as unknown[]).length >= (before.body?.conversations as unknown[]).length);
  assert.equal((await fetch(`${system.baseUrl}/healthz`)).status, 200);
  assert.equal((await fetch(`${system.baseUrl}/refresh_token?token=${anonymous}`)).status, 200, 'others are still served');
});
