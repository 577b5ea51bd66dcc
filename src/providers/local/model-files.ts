/**
 * Where the local model's GGUF file comes from: a path on disk (`LLM_MODEL_PATH`) or a download,
 * done once into the models folder. The downloader is written by hand on `fetch` because it is
 * small and its behaviour is product behaviour: it resumes a cut download from its `.part` file with
 * an HTTP Range request, checks the SHA-256 when one is configured, and only renames the file into
 * place when it is complete, so a half-written file is never mistaken for a model.
 *
 * Accepted `LLM_MODEL_URI` forms:
 *   - `hf:<owner>/<repo>/<path/to/file.gguf>` → `<endpoint>/<owner>/<repo>/resolve/main/<path>`
 *   - `hf:<owner>/<repo>/<path/to/file.gguf>#<revision>` → the same at a branch, tag or commit
 *   - `https://…/file.gguf` (or `http://`) → downloaded as is (a Hugging Face `/blob/` page link is
 *     turned into its `/resolve/` download link)
 * The endpoint is https://huggingface.co unless the `hfEndpoint` option (config `HF_ENDPOINT`, the
 * variable Hugging Face's own tools read, e.g. for a mirror) says otherwise.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { ModelConfig } from '../../config/config.js';
import { ErrorCodes, ModelError } from '../../contracts/errors.js';

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
  /** Tuning for tests; see DownloadOptions. */
  readonly download?: Omit<DownloadOptions, 'sha256' | 'onProgress' | 'signal'>;
}

export interface DownloadOptions {
  /** Expected SHA-256 (hex); a mismatch deletes the file and fails. */
  readonly sha256?: string;
  readonly onProgress?: DownloadProgress;
  readonly signal?: AbortSignal;
  /** Attempts in all, counting the first; cuts and server errors are retried (resuming). Default 5. */
  readonly maxAttempts?: number;
  /** Wait before retry n is n × this. Default 1000 ms. */
  readonly retryDelayMs?: number;
  /** A connection that delivers no byte for this long is dropped and retried. Default 60 s. */
  readonly idleTimeoutMs?: number;
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
    const digest = await withDownloadLock(path, options.signal, () =>
      downloadFile(source.url, path, { ...options.download, sha256, onProgress: options.onProgress, signal: options.signal }),
    );
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
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Download

/** Why one attempt failed, and whether another attempt (resuming) may succeed. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Downloads `url` to `destination` through `<destination>.part`, resuming that file when it exists.
 * Returns the file's SHA-256. Throws a plain Error describing the failure (resolveModelFile adds the
 * advice).
 */
export async function downloadFile(url: string, destination: string, options: DownloadOptions = {}): Promise<string> {
  const partPath = `${destination}.part`;
  const maxAttempts = options.maxAttempts ?? 5;
  await mkdir(dirname(destination), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      await downloadAttempt(url, partPath, options);
      break;
    } catch (error) {
      if (options.signal?.aborted === true) throw options.signal.reason ?? error;
      if (!(error instanceof AttemptError) || !error.retryable || attempt >= maxAttempts) throw error;
      await delay((options.retryDelayMs ?? 1000) * attempt, options.signal);
    }
  }
  const digest = await sha256OfFile(partPath);
  if (options.sha256 !== undefined && digest !== options.sha256) {
    await rm(partPath, { force: true });
    throw new ChecksumError(options.sha256, digest);
  }
  await rename(partPath, destination);
  return digest;
}

export class ChecksumError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`checksum mismatch: expected sha256 ${expected}, got ${actual}; the downloaded file was deleted`);
  }
}

async function downloadAttempt(url: string, partPath: string, options: DownloadOptions): Promise<void> {
  const offset = await fileSize(partPath);
  const idle = new AbortController();
  const signal = options.signal === undefined ? idle.signal : AbortSignal.any([idle.signal, options.signal]);
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  let timer = setTimeout(() => idle.abort(), idleTimeoutMs);
  const touch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), idleTimeoutMs);
  };
  try {
    const response = await request(url, offset, signal);
    const plan = await planWrite(response, offset, partPath);
    if (plan === 'complete') return;
    await receiveBody(response, partPath, plan, options.onProgress, touch);
  } catch (error) {
    if (idle.signal.aborted && options.signal?.aborted !== true) {
      throw new AttemptError(`no data received for ${idleTimeoutMs} ms`, true);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function request(url: string, offset: number, signal: AbortSignal): Promise<Response> {
  // identity: a compressed body would make Content-Length and byte offsets meaningless.
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'parley-model-downloader' };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  try {
    return await fetch(url, { headers, signal, redirect: 'follow' });
  } catch (error) {
    const code = networkErrorCode(error);
    throw new AttemptError(describeNetworkError(error), code !== undefined && TRANSIENT_NETWORK_CODES.has(code), undefined, { cause: error });
  }
}

interface WritePlan {
  /** Byte position the body starts at: the `.part` size when resuming, else 0. */
  readonly start: number;
  readonly total: number | undefined;
}

/** Decides from the status and headers whether the body continues the `.part` file or replaces it. */
async function planWrite(response: Response, offset: number, partPath: string): Promise<WritePlan | 'complete'> {
  if (response.status === 206) {
    const range = parseContentRange(response.headers.get('content-range'));
    if (range !== undefined && range.start === offset) return { start: offset, total: range.total };
    // A range we did not ask for: the server's idea of the file differs from ours; start over.
    await response.body?.cancel();
    await rm(partPath, { force: true });
    throw new AttemptError(`server answered a different range (${response.headers.get('content-range') ?? 'none'}) than requested`, true, 206);
  }
  if (response.status === 416 && offset > 0) {
    await response.body?.cancel();
    const total = parseContentRange(response.headers.get('content-range'))?.total;
    if (total === offset) return 'complete';
    await rm(partPath, { force: true });
    throw new AttemptError('the partial file no longer matches the server file; restarting', true, 416);
  }
  if (response.status === 200) {
    // The server ignored the Range header (or there was none): the body is the whole file.
    const length = parseLength(response.headers.get('content-length'));
    return { start: 0, total: length };
  }
  await response.body?.cancel();
  const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
  throw new AttemptError(`HTTP ${response.status} ${response.statusText}`.trim(), retryable, response.status);
}

async function receiveBody(
  response: Response,
  partPath: string,
  plan: WritePlan,
  onProgress: DownloadProgress | undefined,
  touch: () => void,
): Promise<void> {
  if (response.body === null) throw new AttemptError('the server sent no body', true);
  let received = plan.start;
  onProgress?.(received, plan.total);
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      touch();
      onProgress?.(received, plan.total);
      callback(null, chunk);
    },
  });
  const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  const file = createWriteStream(partPath, { flags: plan.start === 0 ? 'w' : 'a' });
  try {
    await pipeline(body, meter, file);
  } catch (error) {
    // What arrived is on disk; the next attempt asks for the rest.
    throw new AttemptError(`connection lost after ${received} bytes (${describeNetworkError(error)})`, true, undefined, { cause: error });
  }
  if (plan.total !== undefined && received !== plan.total) {
    throw new AttemptError(`the connection closed after ${received} of ${plan.total} bytes`, true);
  }
}

/** `bytes <start>-<end>/<total|*>`, validated; undefined when absent or malformed. */
function parseContentRange(header: string | null): { start: number; total: number | undefined } | undefined {
  const match = header === null ? null : /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(header.trim());
  if (match === null) return undefined;
  const start = match[1] === undefined ? -1 : Number(match[1]);
  const end = match[2] === undefined ? -1 : Number(match[2]);
  const total = match[3] === '*' || match[3] === undefined ? undefined : Number(match[3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined;
  if (total !== undefined && (!Number.isSafeInteger(total) || (end >= 0 && end >= total))) return undefined;
  return { start, total };
}

function parseLength(header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  const value = Number(header.trim());
  return Number.isSafeInteger(value) ? value : undefined;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener('abort', aborted);
      resolvePromise();
    }
    function aborted(): void {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

// Connection refused or a name that does not resolve will not heal in a few seconds; a reset will.
const TRANSIENT_NETWORK_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function networkErrorCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, …) is in its cause chain. */
function describeNetworkError(error: unknown): string {
  const messages: string[] = [];
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current.message !== '' && !messages.includes(current.message)) messages.push(current.message);
  }
  return messages.length === 0 ? String(error) : messages.join(': ');
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
  const status = error instanceof AttemptError ? error.status : undefined;
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
 * Several workers started together on a fresh machine would all append to the same `.part` file.
 * A lock file holding the owner's pid makes the others wait; a lock whose process is gone is stale
 * and taken over.
 */
async function withDownloadLock(path: string, signal: AbortSignal | undefined, download: () => Promise<string>): Promise<string | undefined> {
  const lockPath = `${path}.lock`;
  await mkdir(dirname(path), { recursive: true });
  for (;;) {
    if (await tryLock(lockPath)) break;
    if (!(await lockOwnerAlive(lockPath))) {
      await rm(lockPath, { force: true });
      continue;
    }
    await delay(500, signal);
    // The other process finished: its file is complete (it is renamed into place only then).
    if (await isFile(path)) return undefined;
  }
  try {
    return (await isFile(path)) ? undefined : await download();
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
