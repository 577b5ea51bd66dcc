#!/usr/bin/env node
// `npm run admin -- <command>`: account administration (src/admin/admin.ts). Runs the TypeScript
// source with tsx where it is installed (a development checkout), else the build in dist/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './install.mjs';

function hasTsx() {
  try {
    createRequire(join(ROOT, 'package.json')).resolve('tsx');
    return true;
  } catch {
    return false;
  }
}

const built = join(ROOT, 'dist', 'admin', 'main.js');
const entry = hasTsx() ? ['--import', 'tsx', join(ROOT, 'src', 'admin', 'main.ts')] : [built];
if (!hasTsx() && !existsSync(built)) {
  console.error('Build first: npm run build');
  process.exit(1);
}
const result = spawnSync(process.execPath, [...entry, ...process.argv.slice(2)], { stdio: 'inherit', cwd: ROOT });
process.exit(result.status ?? 1);
