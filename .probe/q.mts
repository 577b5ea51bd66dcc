import { startSystem } from '../test/support/system.js';
const system = await startSystem({ workers: 0 });
for (const q of ['%FF%FE', 'a%ZZb', '%C0%AF', '%ED%A0%80', 'a%', 'Ada%00']) {
  const r = await fetch(`${system.baseUrl}/token?name=${q}`, { method: 'POST' });
  console.log(q, r.status, await r.text());
}
await system.stop();
