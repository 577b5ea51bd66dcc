/**
 * Waiting for a state rather than for time: a test polls a condition until it holds, with a
 * deadline so a state that never comes fails the test instead of hanging it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(25);
  }
}
