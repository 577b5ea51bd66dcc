/**
 * `npm run bench -- [options]` (see --help): runs the benchmark, writes
 * bench/results/<timestamp>.json and .md, prints the summary. Cleans up every process it started
 * on success, on failure, on Ctrl+C / SIGTERM, and when --max-seconds runs out.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runBenchmark } from './harness.js';
import { HELP, parseOptions, parseOrExit } from './lib/options.js';
import { ProcessGroup, ROOT, Shutdown } from './lib/processes.js';
import { renderMarkdown, stamp, writeResults } from './lib/report.js';

async function main(): Promise<void> {
  const options = parseOrExit(() => parseOptions(process.argv.slice(2)), HELP);
  const name = stamp(new Date());
  const outDir = resolve(ROOT, options.outDir);
  const workDir = join(outDir, `${name}-run`);
  mkdirSync(outDir, { recursive: true });
  const group = new ProcessGroup(join(workDir, 'logs'));
  const controller = new AbortController();
  const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

  const shutdown = new Shutdown(group, async (why) => {
    log(`${why}: stopping every process the benchmark started…`);
    controller.abort();
    await group.stopAll(3000);
  });
  const deadline = setTimeout(() => shutdown.abort(`--max-seconds ${options.maxSeconds} reached`, 1), options.maxSeconds * 1000);
  deadline.unref();

  try {
    const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    const result = await runBenchmark(options, { log, signal: controller.signal, workDir, command }, group);
    writeResults(outDir, name, result, renderMarkdown(result));
    log(`wrote ${join(options.outDir, `${name}.json`)} and ${name}.md (child logs in ${join(options.outDir, `${name}-run`)})`);
  } catch (error) {
    if (!shutdown.stopping) log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(deadline);
    await group.stopAll(5000);
  }
  // Sockets of aborted clients may hold the event loop; everything we started is stopped.
  process.exit(process.exitCode ?? 0);
}

await main();
