// `npm run build`: compiles the server (dist/) and the web UI (web/dist/). Without the optional
// local-model binding (an install with `npm ci --omit=optional`, e.g. for gateways) the local
// provider is left out of the build; a worker then says how to add it (src/providers/select.ts).
// tsc copies no .lua files: the store's scripts are copied next to the compiled store, which reads
// them from there at start.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { npm, ROOT, run, say } from './install.mjs';

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
const luaOut = join(ROOT, 'dist', 'store', 'lua');
rmSync(luaOut, { recursive: true, force: true });
cpSync(join(ROOT, 'src', 'store', 'lua'), luaOut, { recursive: true });
if (!lean) run(npm, ['run', '--silent', 'build:web']);
else if (spawnSync(npm, ['run', '--silent', 'build:web'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) {
  // The web build tool's native binding is an optional dependency too.
  say('The web UI could not be built in this install (optional dependencies omitted): the gateway serves the API and /chat; build web/dist on a full install to serve the UI.');
}
