/** Free-text redaction for logs: tokens, keys, bearer values and URL credentials never survive. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, errorRef, redactSecrets, safeError } from '../../src/shared/logger.js';
import { LogCapture } from '../support/log-capture.js';

const TOKEN = '3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c';

test('redactSecrets keeps the text readable and drops every secret', () => {
  const text = `GET /chat?token=${TOKEN} via https://user:hunter2@llm.internal:8443/v1 with Bearer abc.def-ghi and sk-proj-0123456789abcdef hf_abcdefghijklmnop api_key=xyz123`;
  const redacted = redactSecrets(text);
  for (const secret of [TOKEN, 'hunter2', 'abc.def-ghi', 'sk-proj-0123456789abcdef', 'hf_abcdefghijklmnop', 'xyz123']) {
    assert.ok(!redacted.includes(secret), `${secret} in ${redacted}`);
  }
  assert.equal(redactSecrets(`session ${TOKEN} expired`), 'session 3f1c2a9e… expired', 'a bare token keeps its tag, to follow the session');
  assert.match(redacted, /llm\.internal:8443/, 'the host stays: operators need it');
});

test('safeError drops the URL Node attaches to ERR_INVALID_URL and redacts message and stack', () => {
  let thrown: unknown;
  try {
    new URL(`//x:abc/?token=${TOKEN}`, 'http://gateway');
  } catch (error) {
    thrown = error;
  }
  const safe = safeError(thrown);
  assert.equal(safe.code, 'ERR_INVALID_URL');
  assert.ok(!JSON.stringify(safe).includes(TOKEN));
  assert.ok(!JSON.stringify(safe).includes('x:abc'));
});

test('the logger redacts token, text, authorization and err.input fields', () => {
  const capture = new LogCapture();
  const logger = createLogger('test', 'info', 'json', capture);
  logger.info({ token: TOKEN, text: 'private words', req: { headers: { authorization: `Bearer ${TOKEN}` } }, err: { input: `/chat?token=${TOKEN}` } }, 'hello');
  assert.ok(!capture.text().includes(TOKEN));
  assert.ok(!capture.text().includes('private words'));
});

test('error references are short, unambiguous and distinct', () => {
  const refs = new Set(Array.from({ length: 1000 }, () => errorRef()));
  assert.equal(refs.size, 1000);
  for (const ref of refs) assert.match(ref, /^[A-HJ-NP-Z2-9]{10}$/);
});
