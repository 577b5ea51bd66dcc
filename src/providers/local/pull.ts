/**
 * `npm run model:pull`: fetches the configured local model ahead of time (for example on a machine
 * with network access, before copying the models folder to one without). Progress goes to stderr,
 * the final path to stdout, so `path=$(npm run -s model:pull)` works. An interrupted download leaves
 * no file in place; running the command again starts it over.
 */
import { basename } from 'node:path';
import { loadConfig, loadDotEnv } from '../../config/config.js';
import { ParleyError } from '../../contracts/errors.js';
import { modelFileLocation, resolveModelFile, type DownloadProgress } from './model-files.js';

const BAR_WIDTH = 30;
/** How often a line is written when stderr is not a terminal (CI logs, pipes). */
const PLAIN_INTERVAL_MS = 5000;

function formatMb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** One line: `[#####-----]  42.1%  168.3/398.9 MB  12.4 MB/s` (bar and percent when the size is known). */
export function progressLine(bytes: number, total: number | undefined, bytesPerSecond: number): string {
  const speed = `${formatMb(bytesPerSecond)} MB/s`;
  if (total === undefined || total <= 0) return `${formatMb(bytes)} MB  ${speed}`;
  const fraction = Math.min(1, bytes / total);
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  return `${bar} ${(fraction * 100).toFixed(1).padStart(5)}%  ${formatMb(bytes)}/${formatMb(total)} MB  ${speed}`;
}

function progressBar(stream: NodeJS.WriteStream): { update: DownloadProgress; finish: () => void } {
  const startedAt = performance.now();
  let firstBytes: number | undefined;
  let lastDraw = 0;
  let drawn = false;
  const update: DownloadProgress = (bytes, total) => {
    // Speed of this run only: bytes resumed from an earlier run arrived at no speed at all.
    firstBytes ??= bytes;
    const now = performance.now();
    const done = total !== undefined && bytes >= total;
    if (!done && now - lastDraw < (stream.isTTY ? 100 : PLAIN_INTERVAL_MS)) return;
    lastDraw = now;
    const seconds = Math.max((now - startedAt) / 1000, 0.001);
    const line = progressLine(bytes, total, (bytes - firstBytes) / seconds);
    stream.write(stream.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
    drawn = true;
  };
  const finish = (): void => {
    if (drawn && stream.isTTY) stream.write('\n');
  };
  return { update, finish };
}

async function main(): Promise<number> {
  loadDotEnv();
  const config = loadConfig().model;
  if (config.modelPath === undefined) {
    process.stderr.write(`Fetching ${config.modelUri}\n      to ${modelFileLocation(config, config.hfEndpoint)}\n`);
  }
  const interrupt = new AbortController();
  process.once('SIGINT', () => interrupt.abort());
  const bar = progressBar(process.stderr);
  try {
    const result = await resolveModelFile(config, { onProgress: bar.update, signal: interrupt.signal, hfEndpoint: config.hfEndpoint });
    bar.finish();
    if (result.origin === 'path') process.stderr.write('LLM_MODEL_PATH is set: nothing to download.\n');
    if (result.origin === 'cached') process.stderr.write(`${basename(result.path)} is already downloaded.\n`);
    if (result.sha256 !== undefined) process.stderr.write(`sha256 ${result.sha256} (set LLM_MODEL_SHA256 to pin it)\n`);
    process.stdout.write(`${result.path}\n`);
    return 0;
  } catch (error) {
    bar.finish();
    if (interrupt.signal.aborted) {
      process.stderr.write('Interrupted; nothing was saved. Run `npm run model:pull` again to download the model.\n');
      return 130;
    }
    throw error;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof ParleyError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
