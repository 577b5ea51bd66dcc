import { LocalLlamaProvider } from './src/providers/local/local-provider.js';
import { loadConfig } from './src/config/config.js';
const base = loadConfig({ LLM_MODEL_PATH: '/work/shared/models/stories260K.gguf', LLM_CONTEXT_SIZE: '1024', LLM_PARALLEL: '2', LLM_THREADS: '1', LLM_MAX_TOKENS: '200', LLM_TEMPERATURE: '0' } as NodeJS.ProcessEnv);
const log = { info: (o: object, m?: string) => console.log('INFO', m, JSON.stringify(o)), warn: (o: object, m?: string) => console.log('WARN', m, JSON.stringify(o)), error: (o: object, m?: string) => console.log('ERR', m, o) };
const p = new LocalLlamaProvider(base.model, log, { gpu: false });
await p.start();
console.log(p.name, p.countTokens('is'), p.countTokens('Once upon a time'));
const t = performance.now(); let n = 0; let text = '';
for await (const c of p.generate({ turns: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Once upon a time' }], signal: new AbortController().signal })) { n++; text += c; }
console.log('chunks', n, 'tokens', p.countTokens(text), 'ms', performance.now() - t, JSON.stringify(text.slice(0, 100)));
// near-limit
const long = 'The cat sat on the mat. '.repeat(120);
console.log('long tokens', p.countTokens(long));
try { let s = ''; for await (const c of p.generate({ turns: [{ role: 'user', content: long }], signal: new AbortController().signal })) s += c; console.log('long ok', p.countTokens(s)); } catch (e) { console.log('long err', (e as Error).message); }
const huge = long.repeat(3);
try { for await (const _c of p.generate({ turns: [{ role: 'user', content: huge }], signal: new AbortController().signal })) {} console.log('huge ok'); } catch (e) { console.log('huge err', (e as {code:string}).code, (e as Error).message); }
await p.close();
console.log('closed');
