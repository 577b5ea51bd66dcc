/**
 * `npm run bench -- [options]` (see --help): runs the benchmark, writes
 * bench/results/<timestamp>.json and .md, prints the summary. Cleans up every process it started
 * on success, on failure, on Ctrl+C / SIGTERM, and when --max-seconds runs out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runBenchmark } from './harness.js';
import { HELP, parseOptions, type BenchOptions } from './lib/options.js';
import { ProcessGroup, ROOT } from './lib/processes.js';
import { renderMarkdown } from './lib/report.js';

function stamp(date: Date): string {
  return date.toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
}

function parse(): BenchOptions {
  try {
    const options = parseOptions(process.argv.slice(2));
    if (options === null) {
      console.log(HELP);
      process.exit(0);
    }
    return options;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${HELP}`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const options = parse();
  const name = stamp(new Date());
  const outDir = resolve(ROOT, options.outDir);
  const workDir = join(outDir, `${name}-run`);
  mkdirSync(outDir, { recursive: true });
  const group = new ProcessGroup(join(workDir, 'logs'));
  const controller = new AbortController();
  const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

  let stopping = false;
  const abort = (why: string, code: number) => {
    if (stopping) {
      group.killAllNow();
      process.exit(code);
    }
    stopping = true;
    log(`${why}: stopping every process the benchmark started…`);
    controller.abort();
    void group.stopAll(3000).finally(() => process.exit(code));
  };
  process.on('SIGINT', () => abort('interrupted', 130));
  process.on('SIGTERM', () => abort('terminated', 143));
  process.on('exit', () => group.killAllNow());
  const deadline = setTimeout(() => abort(`--max-seconds ${options.maxSeconds} reached`, 1), options.maxSeconds * 1000);
  deadline.unref();

  try {
    const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    const result = await runBenchmark(options, { log, signal: controller.signal, workDir, command }, group);
    const markdown = renderMarkdown(result);
    writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(outDir, `${name}.md`), markdown);
    console.log(`\n${markdown}`);
    log(`wrote ${join(options.outDir, `${name}.json`)} and ${name}.md (child logs in ${join(options.outDir, `${name}-run`)})`);
  } catch (error) {
    if (!stopping) log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(deadline);
    await group.stopAll(5000);
  }
  // Sockets of aborted clients may hold the event loop; everything we started is stopped.
  process.exit(process.exitCode ?? 0);
}

await main();
