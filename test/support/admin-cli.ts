/** Runs the admin CLI (`npm run admin -- …`, i.e. scripts/admin.mjs) as a child process against a test system's Redis. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `viaNpm` goes through `npm run admin --` exactly as an operator types it (slower: npm starts first). */
export function runAdminCli(env: Readonly<Record<string, string>>, args: readonly string[], viaNpm = false): Promise<CliResult> {
  const [command, commandArgs] = viaNpm ? ['npm', ['run', '--silent', 'admin', '--', ...args]] : [process.execPath, ['scripts/admin.mjs', ...args]];
  const child = spawn(command, commandArgs, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
