import { startSystem } from '../test/support/system.js';
const system = await startSystem({ env: { SESSION_TTL_SECONDS: '10' } });
const b = system.baseUrl;
async function show(label: string, p: Promise<Response>) {
  const r = await p;
  console.log(label, r.status, JSON.stringify([...r.headers].filter(([k]) => !['date','connection','keep-alive'].includes(k))).slice(0,300), (await r.text()).slice(0, 200));
}
await show('query', fetch(`${b}/token?name=Ada`, { method: 'POST' }));
await show('json', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"Bo"}' }));
await show('json charset', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"name":"Bo"}' }));
await show('form empty + query', fetch(`${b}/token?name=Ada`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }));
await show('form + query', fetch(`${b}/token?name=Ada`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=Ada' }));
await show('text + query', fetch(`${b}/token?name=Ada`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }));
await show('form', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=Ada' }));
await show('octet', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array([1,2,3]) }));
await show('malformed', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' }));
await show('1MB', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(1<<20) }) }));
await show('1MB refresh', fetch(`${b}/refresh_token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x'.repeat(1<<20) }) }));
await show('refresh text', fetch(`${b}/refresh_token`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }));
await show('refresh malformed', fetch(`${b}/refresh_token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }));
await show('404', fetch(`${b}/nope`));
await show('404 cors', fetch(`${b}/healthz`, { headers: { origin: 'https://evil.example' } }));
await show('lone surrogate', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"\\ud800"}' }));
await show('proto', fetch(`${b}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"__proto__":{"name":"x"}}' }));
await show('GET token', fetch(`${b}/token?name=Ada`));
await show('no ct body', fetch(`${b}/token?name=Ada`, { method: 'POST', body: 'abc' }));
await system.stop();
