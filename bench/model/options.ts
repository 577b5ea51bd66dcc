/** Command-line options of `npm run bench:model` (see HELP). */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { wholeOr } from '../lib/options.js';
import { ROOT } from '../lib/processes.js';

export const DEFAULT_MODEL = resolve(ROOT, '../shared/models/stories260K.gguf');

export interface ModelOptions {
  readonly smoke: boolean;
  readonly rounds: number;
  readonly warmup: number;
  readonly maxTokens: number;
  readonly contextSize: number;
  readonly threads: number;
  readonly parallel: number;
  readonly modelPath: string;
  readonly outDir: string;
  /** Write V8 CPU profiles of the gateway and worker processes into this folder. */
  readonly cpuProfDir: string | undefined;
  /** Also measure the pipeline with gateway and worker in this process (Redis still in between). */
  readonly inProcess: boolean;
}

export const HELP = [
  'Usage: npm run bench:model -- [--smoke] [--rounds N] [--warmup N] [--max-tokens N] [--context N] [--threads N] [--parallel N] [--model PATH] [--out-dir DIR] [--in-process] [--cpu-prof DIR]',
  `  --model       GGUF file (default: LLM_MODEL_PATH, else ${DEFAULT_MODEL})`,
  '  --cpu-prof D  write V8 CPU profiles of the gateway and worker into folder D (for the bench process: node --cpu-prof)',
  '  --in-process  also measure the pipeline with gateway and worker in this process: separates the process hops from the Redis path',
  '  --smoke       tiny run for CI (2 rounds of 24 tokens): checks the harness, says nothing about speed',
  '  REDIS_URL     use this Redis instead of starting a redis-server (no AUTH, no TLS; keys under a random prefix, removed afterwards)',
].join('\n');

/** Parses argv; null when --help was asked for. Throws with a clear message otherwise. */
export function parseModelOptions(argv: readonly string[]): ModelOptions | null {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      smoke: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      'max-tokens': { type: 'string' },
      context: { type: 'string' },
      threads: { type: 'string' },
      parallel: { type: 'string' },
      model: { type: 'string' },
      'out-dir': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'in-process': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  const smoke = values.smoke;
  return {
    smoke,
    rounds: wholeOr('rounds', values.rounds, smoke ? 2 : 10),
    warmup: wholeOr('warmup', values.warmup, smoke ? 1 : 2, 0),
    maxTokens: wholeOr('max-tokens', values['max-tokens'], smoke ? 24 : 768),
    contextSize: wholeOr('context', values.context, 1024, 256),
    threads: wholeOr('threads', values.threads, 1),
    parallel: wholeOr('parallel', values.parallel, 2),
    modelPath: resolve(values.model ?? process.env.LLM_MODEL_PATH ?? DEFAULT_MODEL),
    outDir: resolve(values['out-dir'] ?? join(ROOT, 'bench/results')),
    cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    inProcess: values['in-process'],
  };
}
