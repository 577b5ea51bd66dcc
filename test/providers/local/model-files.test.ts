import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { ErrorCodes, ModelError } from '../../../src/contracts/errors.js';
import { modelFileLocation, parseModelUri, resolveModelFile, type ModelFileConfig } from '../../../src/providers/local/model-files.js';

const MiB = 1024 * 1024;
// Larger than ipull's 5 MiB chunk, the unit it fetches (and fetches again after a cut).
const FILE = randomBytes(12 * MiB + 123);
const SHA256 = createHash('sha256').update(FILE).digest('hex');
const URI = 'hf:test-owner/test-repo/model-q4.gguf';
const FILE_URL_PATH = '/test-owner/test-repo/resolve/main/model-q4.gguf';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** A range request of one byte: the reachability check made before ipull takes over. */
const PROBE = 'bytes=0-0';

/** Serves FILE with Range support; `behaviour` may cut or replace answers per download request. */
class FileServer {
  /** Range header of every request except the probe, in order (undefined: no Range). */
  readonly ranges: (string | undefined)[] = [];
  probes = 0;
  behaviour: (request: number) => 'serve' | 'cut' | 404 | 500 = () => 'serve';
  /** Delay before answering a download request, so that a download takes long enough to overlap another start. */
  delayMs = 0;
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((request, response) => this.handle(request, response));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private readonly handle: Handler = (request, response) => {
    if (!request.url?.startsWith(FILE_URL_PATH) || request.method !== 'GET') {
      response.writeHead(404).end('not found');
      return;
    }
    if (request.headers.range === PROBE) this.probes++;
    else this.ranges.push(request.headers.range);
    const action = request.headers.range === PROBE ? 'serve' : this.behaviour(this.ranges.length);
    if (request.headers.range !== PROBE && this.delayMs > 0) {
      setTimeout(() => this.answer(request, response, action), this.delayMs);
      return;
    }
    this.answer(request, response, action);
  };

  private answer(request: IncomingMessage, response: ServerResponse, action: 'serve' | 'cut' | 404 | 500): void {
    if (action === 404 || action === 500) {
      response.writeHead(action).end('no');
      return;
    }
    const match = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
    const start = match === null ? 0 : Number(match[1]);
    const end = match?.[2] === undefined || match[2] === '' ? FILE.length - 1 : Number(match[2]);
    const headers = { 'content-length': String(end - start + 1), 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    if (match !== null) response.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${FILE.length}` });
    else response.writeHead(200, headers);
    const body = FILE.subarray(start, end + 1);
    if (action === 'serve') {
      response.end(body);
      return;
    }
    // Half of what was asked for, then the connection dies.
    const half = body.subarray(0, Math.floor(body.length / 2));
    response.write(half, () => setTimeout(() => response.destroy(), 20));
  }
}

describe('model files', () => {
  let server: FileServer;
  let endpoint: string;
  let modelsDir: string;

  const config = (overrides: Partial<ModelFileConfig> = {}): ModelFileConfig => ({
    modelPath: undefined,
    modelUri: URI,
    modelSha256: undefined,
    modelsDir,
    ...overrides,
  });

  before(async () => {
    modelsDir = await mkdtemp(join(tmpdir(), 'parley-models-'));
  });
  after(async () => {
    await rm(modelsDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    server = new FileServer();
    endpoint = await server.start();
    await rm(modelsDir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await server.stop();
  });

  it('downloads with progress into <modelsDir>/<owner>/<repo>/<file> and then uses the cached file', async () => {
    const progress: [number, number | undefined][] = [];
    const first = await resolveModelFile(config({ modelSha256: SHA256.toUpperCase() }), {
      hfEndpoint: endpoint,
      onProgress: (bytes, total) => progress.push([bytes, total]),
    });
    assert.equal(first.origin, 'downloaded');
    assert.equal(first.path, join(modelsDir, 'test-owner', 'test-repo', 'model-q4.gguf'));
    assert.equal(first.path, modelFileLocation(config(), endpoint));
    assert.equal(first.sha256, SHA256);
    assert.deepEqual(await readFile(first.path), FILE);
    assert.ok(progress.length > 2, `progress reported ${progress.length} times`);
    assert.ok(progress.every(([, total]) => total === FILE.length));
    assert.ok(progress.every(([bytes], index) => index === 0 || bytes >= (progress[index - 1]?.[0] ?? 0)), 'progress never goes back');
    assert.deepEqual(progress.at(-1), [FILE.length, FILE.length]);
    assert.deepEqual(await readdir(dirname(first.path)), ['model-q4.gguf'], 'no .download, .ipull or .lock left behind');

    const requests = server.ranges.length + server.probes;
    const second = await resolveModelFile(config(), { hfEndpoint: endpoint });
    assert.deepEqual(second, { path: first.path, origin: 'cached' });
    assert.equal(server.ranges.length + server.probes, requests, 'the cached file is not downloaded again, nor checked with the server');
  });

  it('fetches a cut 5 MiB chunk again (in-process retry) and completes', async () => {
    // Request 1 is ipull's look at the file; 2 and later fetch chunks.
    server.behaviour = (request) => (request === 2 ? 'cut' : 'serve');
    const result = await resolveModelFile(config({ modelSha256: SHA256 }), { hfEndpoint: endpoint });
    const cut = server.ranges[1];
    assert.match(cut ?? '', /^bytes=\d+-\d+$/);
    assert.equal(server.ranges.filter((range) => range === cut).length, 2, `the cut chunk (${cut}) is asked for again, from its start`);
    assert.deepEqual(await readFile(result.path), FILE);
  });

  it('leaves nothing in place when a download is interrupted, and the next run completes', async () => {
    const path = modelFileLocation(config(), endpoint);
    const interrupt = new AbortController();
    await assert.rejects(
      resolveModelFile(config({ modelSha256: SHA256 }), {
        hfEndpoint: endpoint,
        signal: interrupt.signal,
        onProgress: (bytes) => {
          if (bytes > 0) interrupt.abort();
        },
      }),
      /aborted/,
    );
    assert.ok(interrupt.signal.aborted);
    assert.deepEqual(
      (await readdir(dirname(path))).filter((name) => name === 'model-q4.gguf' || name.endsWith('.download') || name.endsWith('.lock')),
      [],
      'neither the model nor an unverified file nor the lock is left',
    );
    const result = await resolveModelFile(config({ modelSha256: SHA256 }), { hfEndpoint: endpoint });
    assert.equal(result.origin, 'downloaded');
    assert.deepEqual(await readFile(path), FILE);
  });

  it('retries server errors', async () => {
    server.behaviour = (request) => (request === 1 ? 500 : 'serve');
    const result = await resolveModelFile(config({ modelSha256: SHA256 }), { hfEndpoint: endpoint });
    assert.ok(server.ranges.length >= 2);
    assert.deepEqual(await readFile(result.path), FILE);
  });

  it('lets one of two concurrent starts download while the other waits for its file', async () => {
    const results = await Promise.all([
      resolveModelFile(config({ modelSha256: SHA256 }), { hfEndpoint: endpoint }),
      resolveModelFile(config({ modelSha256: SHA256 }), { hfEndpoint: endpoint }),
    ]);
    assert.deepEqual(results.map((result) => result.origin).sort(), ['cached', 'downloaded']);
    assert.equal(server.probes, 1, 'one download only');
    assert.equal(server.ranges.filter((range) => range === undefined).length, 1, 'one download only');
    assert.deepEqual(await readFile(modelFileLocation(config(), endpoint)), FILE);
  });

  it('fails on a checksum mismatch and leaves no file', async () => {
    const wrong = 'ab'.repeat(32);
    await assert.rejects(
      resolveModelFile(config({ modelSha256: wrong }), { hfEndpoint: endpoint }),
      (error: unknown) => {
        assert.ok(error instanceof ModelError);
        assert.equal(error.code, ErrorCodes.modelUnavailable);
        assert.match(error.message, new RegExp(`checksum mismatch: expected sha256 ${wrong}, got ${SHA256}`));
        assert.match(error.message, /LLM_MODEL_SHA256/);
        return true;
      },
    );
    assert.deepEqual(await readdir(dirname(modelFileLocation(config(), endpoint))), []);
  });

  it('rejects a malformed checksum before downloading', async () => {
    await assert.rejects(resolveModelFile(config({ modelSha256: 'abc' }), { hfEndpoint: endpoint }), {
      code: ErrorCodes.modelNotConfigured,
      message: /LLM_MODEL_SHA256 must be 64 hexadecimal digits/,
    });
    assert.equal(server.ranges.length + server.probes, 0);
  });

  it('explains a 404', async () => {
    await assert.rejects(resolveModelFile(config({ modelUri: 'hf:test-owner/test-repo/missing.gguf' }), { hfEndpoint: endpoint }), (error: unknown) => {
      assert.ok(error instanceof ModelError);
      assert.equal(error.code, ErrorCodes.modelNotConfigured);
      assert.match(error.message, /HTTP 404/);
      assert.match(error.message, /does not exist/);
      assert.match(error.message, /LLM_MODEL_URI/);
      assert.match(error.message, /LLM_MODEL_PATH/);
      return true;
    });
  });

  it('says what failed and how to fix it when there is no network', async () => {
    const closed = new FileServer();
    const deadEndpoint = await closed.start();
    await closed.stop();
    const started = performance.now();
    await assert.rejects(resolveModelFile(config(), { hfEndpoint: deadEndpoint }), (error: unknown) => {
      assert.ok(error instanceof ModelError);
      assert.equal(error.code, ErrorCodes.modelUnavailable);
      assert.ok(error.message.startsWith(`Could not download the model ${URI} from ${deadEndpoint}${FILE_URL_PATH}`), error.message);
      assert.match(error.message, /ECONNREFUSED/);
      assert.match(error.message, /set LLM_MODEL_PATH to a local \.gguf model file/);
      assert.match(error.message, /LLM_BASE_URL/);
      assert.match(error.message, /npm run model:pull/);
      assert.ok(error.message.includes(modelFileLocation(config(), deadEndpoint)), 'names where the file should go');
      return true;
    });
    assert.ok(performance.now() - started < 2000, 'a refused connection is not retried for long');
  });

  it('takes over the lock of a download whose process died', async () => {
    const path = modelFileLocation(config(), endpoint);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(`${path}.lock`, '2147483646');
    const result = await resolveModelFile(config(), { hfEndpoint: endpoint });
    assert.equal(result.origin, 'downloaded');
    assert.equal(existsSync(`${path}.lock`), false);
  });

  const pull = (env: Record<string, string> = {}) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../../src/providers/local/pull.ts', import.meta.url))], {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      env: { ...process.env, LLM_MODEL_PATH: '', LLM_MODEL_URI: URI, LLM_MODEL_SHA256: SHA256, MODELS_DIR: modelsDir, HF_ENDPOINT: endpoint, ...env },
    });

  it('lets one of two processes started at once download while the other waits for its file', async () => {
    // Longer than the two processes' start-up times differ, so that both find no file and one finds the lock.
    server.delayMs = 1500;
    const [first, second] = await Promise.all([pull(), pull()]);
    const path = modelFileLocation(config(), endpoint);
    assert.deepEqual([first.stdout, second.stdout], [`${path}\n`, `${path}\n`]);
    assert.equal([first.stderr, second.stderr].filter((stderr) => stderr.includes('is already downloaded')).length, 1);
    assert.equal(server.probes, 1, 'one download only');
    assert.deepEqual(await readFile(path), FILE);
  });

  it('npm run model:pull shows progress on stderr, prints the path and exits non-zero on failure', async () => {
    const { stdout, stderr } = await pull();
    assert.equal(stdout, `${modelFileLocation(config(), endpoint)}\n`);
    assert.match(stderr, /\[#{30}\] 100\.0% {2}12\.6\/12\.6 MB {2}[\d.]+ MB\/s/);
    assert.match(stderr, new RegExp(`sha256 ${SHA256}`));

    await assert.rejects(pull({ LLM_MODEL_URI: 'hf:test-owner/test-repo/missing.gguf' }), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stderr ?? '', /HTTP 404/);
      return true;
    });
  });

  it('uses LLM_MODEL_PATH when set, and explains a missing file', async () => {
    const local = join(modelsDir, 'local.gguf');
    await mkdir(modelsDir, { recursive: true });
    await writeFile(local, 'x');
    assert.deepEqual(await resolveModelFile(config({ modelPath: local })), { path: local, origin: 'path' });
    await assert.rejects(resolveModelFile(config({ modelPath: join(modelsDir, 'nope.gguf') })), (error: unknown) => {
      assert.ok(error instanceof ModelError);
      assert.equal(error.code, ErrorCodes.modelNotConfigured);
      assert.match(error.message, /LLM_MODEL_PATH points to .*nope\.gguf, which is not a file/);
      assert.match(error.message, /LLM_BASE_URL/);
      return true;
    });
    assert.equal(server.ranges.length, 0);
  });
});

describe('parseModelUri', () => {
  it('maps hf: URIs to resolve URLs, with folders and revisions', () => {
    assert.deepEqual(parseModelUri('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf', 'https://huggingface.co'), {
      url: 'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf',
      relativePath: join('Qwen', 'Qwen2.5-0.5B-Instruct-GGUF', 'qwen2.5-0.5b-instruct-q4_k_m.gguf'),
    });
    assert.equal(parseModelUri('hf:o/r/sub/m.gguf#v1.0', 'http://mirror.local/').url, 'http://mirror.local/o/r/resolve/v1.0/sub/m.gguf');
  });

  it('accepts plain URLs and turns a Hugging Face page link into its download link', () => {
    assert.deepEqual(parseModelUri('https://example.com/files/m.gguf?x=1'), { url: 'https://example.com/files/m.gguf?x=1', relativePath: 'm.gguf' });
    assert.equal(parseModelUri('https://huggingface.co/o/r/blob/main/m.gguf').url, 'https://huggingface.co/o/r/resolve/main/m.gguf');
  });

  it('rejects URIs that are malformed or would escape the models folder', () => {
    for (const uri of ['hf:o/r', 'hf:o/r/../../etc/passwd', 'hf:o/r/m.gguf#a#b', 'ftp://x/m.gguf', 'models/m.gguf', 'https://example.com/']) {
      assert.throws(() => parseModelUri(uri, 'https://huggingface.co'), { code: ErrorCodes.modelNotConfigured, message: /LLM_MODEL_URI/ }, uri);
    }
  });
});
