/**
 * Where the local model's GGUF file comes from: a path on disk (`LLM_MODEL_PATH`) or a download,
 * done once into the models folder. The transfer itself is node-llama-cpp's downloader (ipull:
 * parallel connections, retries of a cut connection per 5 MiB chunk). What stays here is
 * Parley's: where the file lives, the optional SHA-256 check, one writer per file across processes,
 * and errors that say what to do.
 *
 * Accepted `LLM_MODEL_URI` forms:
 *   - `hf:<owner>/<repo>/<path/to/file.gguf>` → `<endpoint>/<owner>/<repo>/resolve/main/<path>`
 *   - `hf:<owner>/<repo>/<path/to/file.gguf>#<revision>` → the same at a branch, tag or commit
 *   - `https://…/file.gguf` (or `http://`) → downloaded as is (a Hugging Face `/blob/` page link is
 *     turned into its `/resolve/` download link)
 * The endpoint is https://huggingface.co unless the `hfEndpoint` option (config `HF_ENDPOINT`, the
 * variable Hugging Face's own tools read, e.g. for a mirror) says otherwise. The URI is parsed here,
 * not by node-llama-cpp, because the file's place (`<modelsDir>/<owner>/<repo>/<file>`) must be known
 * before any network access: `model:pull` prints it, and a cached file is used without asking a server.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createModelDownloader } from 'node-llama-cpp';
import type { ModelConfig } from '../../config/config.js';
import { ErrorCodes, ModelError, ParleyError } from '../../contracts/errors.js';
import { describeCause } from '../provider.js';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

export type ModelFileConfig = Pick<ModelConfig, 'modelPath' | 'modelUri' | 'modelSha256' | 'modelsDir'>;

/** Called as bytes arrive; `totalBytes` is undefined when the server does not say. */
export type DownloadProgress = (downloadedBytes: number, totalBytes: number | undefined) => void;

export interface ModelSource {
  /** The URL the file is fetched from. */
  readonly url: string;
  /** Where the file lives below the models folder. */
  readonly relativePath: string;
}

export interface ResolvedModelFile {
  readonly path: string;
  /** `path`: LLM_MODEL_PATH; `cached`: downloaded before; `downloaded`: fetched just now. */
  readonly origin: 'path' | 'cached' | 'downloaded';
  /** SHA-256 of a file downloaded just now (to pin it with LLM_MODEL_SHA256). */
  readonly sha256?: string;
}

export interface ResolveModelOptions {
  readonly hfEndpoint?: string;
  readonly onProgress?: DownloadProgress;
  readonly signal?: AbortSignal;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const NAME_SEGMENT = /^[\w.-]+$/;

/** Where the configured model is (or will be, once downloaded). Throws ModelError on a bad URI. */
export function modelFileLocation(config: ModelFileConfig, hfEndpoint?: string): string {
  if (config.modelPath !== undefined) return resolve(config.modelPath);
  return resolve(config.modelsDir, parseModelUri(config.modelUri, hfEndpoint).relativePath);
}

/** Finds the model file, downloading it when needed. Every failure is a ModelError that says how to fix it. */
export async function resolveModelFile(config: ModelFileConfig, options: ResolveModelOptions = {}): Promise<ResolvedModelFile> {
  if (config.modelPath !== undefined) return { path: await existingModelPath(config.modelPath), origin: 'path' };
  const sha256 = normalizeSha256(config.modelSha256);
  const source = parseModelUri(config.modelUri, options.hfEndpoint);
  const path = resolve(config.modelsDir, source.relativePath);
  // The file only ever appears by an atomic rename after a complete (and, when configured, verified)
  // download, so its presence is proof enough; re-hashing gigabytes on every start is not worth it.
  if (await isFile(path)) return { path, origin: 'cached' };
  try {
    const digest = await withDownloadLock(path, options.signal, () => download(source.url, path, sha256, options));
    // No digest: another process downloaded the file while this one waited for it.
    return digest === undefined ? { path, origin: 'cached' } : { path, origin: 'downloaded', sha256: digest };
  } catch (error) {
    throw downloadFailure(config.modelUri, source.url, path, error);
  }
}

/** Turns `LLM_MODEL_URI` into a download URL and a file path below the models folder. */
export function parseModelUri(uri: string, hfEndpoint = DEFAULT_HF_ENDPOINT): ModelSource {
  const trimmed = uri.trim();
  if (trimmed.startsWith('hf:')) return parseHuggingFaceUri(trimmed, hfEndpoint);
  if (/^https?:\/\//i.test(trimmed)) return parseUrl(trimmed);
  throw badUri(uri, 'it must start with hf: or https://');
}

function parseHuggingFaceUri(uri: string, hfEndpoint: string): ModelSource {
  const [location = '', revision = 'main', ...extra] = uri.slice(3).split('#');
  const [owner = '', repo = '', ...file] = location.split('/');
  const segments = [owner, repo, ...file];
  if (extra.length > 0 || file.length === 0 || !segments.every(isSafeSegment) || !NAME_SEGMENT.test(revision)) {
    throw badUri(uri, 'expected hf:<owner>/<repo>/<file.gguf> (optionally #<revision>)');
  }
  const endpoint = hfEndpoint.replace(/\/+$/, '');
  const url = `${endpoint}/${owner}/${repo}/resolve/${encodeURIComponent(revision)}/${file.map(encodeURIComponent).join('/')}`;
  return { url, relativePath: join(owner, repo, ...file) };
}

function parseUrl(uri: string): ModelSource {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw badUri(uri, 'it is not a valid URL');
  }
  // People paste the page link of a file on Hugging Face; its download link differs by one word.
  if (url.hostname === 'huggingface.co') url.pathname = url.pathname.replace(/^(\/[^/]+\/[^/]+)\/blob\//, '$1/resolve/');
  const name = decodeURIComponent(basename(url.pathname));
  if (!isSafeSegment(name)) throw badUri(uri, 'the URL must end with a file name');
  return { url: url.toString(), relativePath: name };
}

function isSafeSegment(segment: string): boolean {
  return NAME_SEGMENT.test(segment) && segment !== '.' && segment !== '..';
}

function badUri(uri: string, why: string): ModelError {
  return new ModelError(
    ErrorCodes.modelNotConfigured,
    `LLM_MODEL_URI ${JSON.stringify(uri)} is not usable: ${why}. ` +
      'Example: hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf, or set LLM_MODEL_PATH to a local .gguf file.',
  );
}

function normalizeSha256(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const digest = value.trim().toLowerCase();
  if (!SHA256_HEX.test(digest)) {
    throw new ModelError(ErrorCodes.modelNotConfigured, `LLM_MODEL_SHA256 must be 64 hexadecimal digits (got ${JSON.stringify(value)}).`);
  }
  return digest;
}

async function existingModelPath(modelPath: string): Promise<string> {
  const path = resolve(modelPath);
  if (await isFile(path)) return path;
  throw new ModelError(
    ErrorCodes.modelNotConfigured,
    `LLM_MODEL_PATH points to ${path}, which is not a file. Set LLM_MODEL_PATH to an existing .gguf model file, ` +
      'or unset it to download the default model (LLM_MODEL_URI), or set LLM_BASE_URL to use an OpenAI-compatible API instead.',
  );
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** SHA-256 of a file, streamed (models are gigabytes). */
async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Download

/** A refused or unresolvable connection is reported within this time instead of being retried. */
const PROBE_TIMEOUT_MS = 30_000;

/**
 * Downloads `url` to `destination` and returns its SHA-256. node-llama-cpp writes
 * `<destination>.download.ipull` and renames it to `<destination>.download` when complete; only after
 * the checksum passes is that renamed to `destination`, so the final name always means "complete and
 * verified". Throws plain errors (resolveModelFile adds the advice).
 */
async function download(url: string, destination: string, sha256: string | undefined, options: ResolveModelOptions): Promise<string> {
  await probe(url, options.signal);
  const staged = `${destination}.download`;
  // ipull reports on a timer, also when nothing new arrived (for seconds at 100 %); pass on changes only.
  let reported = -1;
  const report = (bytes: number, total: number): void => {
    if (bytes === reported) return;
    reported = bytes;
    options.onProgress?.(bytes, total > 0 ? total : undefined);
  };
  const downloader = await createModelDownloader({
    modelUri: url,
    dirPath: dirname(staged),
    fileName: basename(staged),
    // A `.download` left by a run that died before its checksum is fetched again, not trusted.
    skipExisting: false,
    // A mirror given as a full URL still gets the Hugging Face token headers node-llama-cpp adds.
    endpoints: options.hfEndpoint === undefined ? undefined : { huggingFace: options.hfEndpoint },
    onProgress: ({ downloadedSize, totalSize }) => report(downloadedSize, totalSize),
  });
  await downloader.download({ signal: options.signal });
  // On abort, download() cancels ipull and then resolves as if it had finished.
  options.signal?.throwIfAborted();
  // Its last timed report may fall short of the end.
  report(downloader.totalSize, downloader.totalSize);
  const digest = await sha256OfFile(staged);
  if (sha256 !== undefined && digest !== sha256) {
    await rm(staged, { force: true });
    throw new ChecksumError(sha256, digest);
  }
  await rename(staged, destination);
  return digest;
}

class ChecksumError extends ParleyError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(ErrorCodes.modelUnavailable, `checksum mismatch: expected sha256 ${expected}, got ${actual}; the downloaded file was deleted`);
  }
}

/**
 * One plain request before handing over to ipull, which retries a refused connection 150 times over
 * about twelve minutes: an offline machine should hear at once why, and what to do instead.
 */
async function probe(url: string, signal: AbortSignal | undefined): Promise<void> {
  const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      headers: { range: 'bytes=0-0', 'accept-encoding': 'identity' },
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
    });
    await response.body?.cancel();
  } catch (error) {
    if (signal?.aborted === true) throw error;
    throw new Error(timeout.aborted ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s` : describeCause(error), { cause: error });
  }
}

/** ipull's StatusCodeError carries the HTTP status; it is not exported, so it is recognised by shape. */
function httpStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

// ---------------------------------------------------------------------------------------------
// Errors with advice

const NO_NETWORK_ADVICE =
  'To fix it: set LLM_MODEL_PATH to a local .gguf model file; or set LLM_BASE_URL (and LLM_API_KEY) to use an ' +
  'OpenAI-compatible API instead; or run `npm run model:pull` on a machine with internet access and copy the file to';

function downloadFailure(uri: string, url: string, path: string, error: unknown): ModelError {
  if (error instanceof ModelError) return error;
  if (error instanceof ChecksumError) {
    return new ModelError(
      ErrorCodes.modelUnavailable,
      `The model downloaded from ${url} failed its ${error.message}. Check LLM_MODEL_SHA256 and LLM_MODEL_URI (${uri}), then try again.`,
      false,
      undefined,
      { cause: error },
    );
  }
  const status = httpStatus(error);
  if (status === 404 || status === 401 || status === 403) {
    const why = status === 404 ? 'does not exist there' : 'needs an account or licence acceptance (gated repository)';
    return new ModelError(
      ErrorCodes.modelNotConfigured,
      `Could not download the model ${uri}: ${url} answered HTTP ${status}, the file ${why}. ` +
        'Check LLM_MODEL_URI, or download the file yourself and set LLM_MODEL_PATH to it.',
      false,
      undefined,
      { cause: error },
    );
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new ModelError(
    ErrorCodes.modelUnavailable,
    `Could not download the model ${uri} from ${url}: ${reason}. ${NO_NETWORK_ADVICE} ${path}.`,
    true,
    undefined,
    { cause: error },
  );
}

// ---------------------------------------------------------------------------------------------
// One downloader per file

/**
 * Several workers started together on a fresh machine would all write the same files at once.
 * A lock file holding the owner's pid makes the others wait; a lock whose process is gone is stale
 * and taken over.
 */
async function withDownloadLock(path: string, signal: AbortSignal | undefined, run: () => Promise<string>): Promise<string | undefined> {
  const lockPath = `${path}.lock`;
  await mkdir(dirname(path), { recursive: true });
  for (;;) {
    if (await tryLock(lockPath)) break;
    if (!(await lockOwnerAlive(lockPath))) {
      await rm(lockPath, { force: true });
      continue;
    }
    await sleep(500, undefined, { signal });
    // The other process finished: its file is complete (it is renamed into place only then).
    if (await isFile(path)) return undefined;
  }
  try {
    return (await isFile(path)) ? undefined : await run();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function tryLock(lockPath: string): Promise<boolean> {
  try {
    const handle = await open(lockPath, 'wx');
    await handle.writeFile(String(process.pid));
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function lockOwnerAlive(lockPath: string): Promise<boolean> {
  let pid: number;
  let ageMs: number;
  try {
    pid = Number((await readFile(lockPath, 'utf8')).trim());
    ageMs = Date.now() - (await stat(lockPath)).mtimeMs;
  } catch {
    return false;
  }
  // An empty lock is one being written right now, unless its writer died in between.
  if (!Number.isSafeInteger(pid) || pid <= 0) return ageMs < 10_000;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
