// `npm run test:faults`: the fault suite at its full size, then its table (from test-results/faults.jsonl).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const results = 'test-results/faults.jsonl';
rmSync(results, { force: true });
const run = spawnSync(process.execPath, ['scripts/run-tests.mjs', 'test', 'faults/'], {
  stdio: 'inherit',
  env: { ...process.env, FAULTS_SIZE: process.env.FAULTS_SIZE ?? 'full' },
});
if (existsSync(results)) {
  const rows = readFileSync(results, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const columns = ['scenario', 'turns', 'answered', 'errors', 'lost', 'duplicated', 'outOfOrder', 'wrongText', 'recoverMs', 'latencyP50Ms', 'latencyP99Ms', 'maxLatencyMs', 'reconnects'];
  console.log(`\n| ${columns.join(' | ')} |\n|${columns.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${columns.map((column) => row[column]).join(' | ')} |`);
}
process.exit(run.status ?? 1);
