// `npm run build`: compiles the server (dist/) and the web UI (web/dist/). Without the optional
// local-model binding (an install with `npm ci --omit=optional`, e.g. for gateways) the local
// provider is left out of the build; a worker then says how to add it (src/providers/select.ts).
import { createRequire } from 'node:module';
import { npm, run, say } from './install.mjs';

function hasLocalModelBinding() {
  try {
    createRequire(import.meta.url).resolve('node-llama-cpp');
    return true;
  } catch {
    return false;
  }
}

const lean = !hasLocalModelBinding();
if (lean) say('node-llama-cpp is not installed: building without the local model provider.');
run(npm, ['exec', '--', 'tsc', '-p', lean ? 'tsconfig.lean.json' : 'tsconfig.build.json']);
run(npm, ['run', '--silent', 'build:web']);
