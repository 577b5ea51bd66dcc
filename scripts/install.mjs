// Installs the project's dependencies (npm ci) when node_modules is missing or older than
// package-lock.json. Used by `npm start` and, as the `pretest` hook, by `npm test`, so both of
// the README's commands work on a fresh clone. Node built-ins only: nothing is installed yet.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

export function say(message) {
  console.log(`\x1b[1m[parley]\x1b[0m ${message}`);
}

export function run(command, args) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) {
    say(`"${command} ${args.join(' ')}" failed (exit ${result.status}).`);
    process.exit(result.status ?? 1);
  }
}

export function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).filter((name) => name !== 'dist' && name !== 'node_modules').map((name) => newestMtime(join(path, name))));
}

export function installIfNeeded() {
  const marker = join(ROOT, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= newestMtime(join(ROOT, 'package-lock.json'))) return;
  say('Installing dependencies (npm ci)…');
  run(npm, ['ci', '--no-audit', '--no-fund']);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) installIfNeeded();
