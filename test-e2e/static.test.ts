/** The gateway serves the built UI: compressed when the browser accepts it, cached safely. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSystem, type TestSystem } from '../test/support/system.js';

let system: TestSystem;
before(async () => {
  system = await startSystem({ workers: 0 });
});
after(async () => {
  await system.stop();
});

test('index.html is revalidated on every load; hashed assets are immutable and served compressed', async () => {
  const page = await fetch(`${system.baseUrl}/`, { headers: { 'accept-encoding': 'br' } });
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const html = await page.text();
  assert.match(html, /<div id="root">|<script type="module"/);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /upgrade-insecure-requests/, 'plain http on a LAN keeps working');

  const asset = /(\/assets\/[\w.-]+\.js)/.exec(html)?.[1];
  assert.ok(asset !== undefined, 'the page references a hashed script');
  // fetch() decodes for us; the raw header shows what went over the wire.
  const script = await fetch(`${system.baseUrl}${asset}`, { headers: { 'accept-encoding': 'br, gzip' } });
  assert.equal(script.status, 200);
  assert.equal(script.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.match(script.headers.get('content-encoding') ?? '', /^(br|gzip)$/);
});
