/** bench:model's result file (JSON) and its readable summary (Markdown). */
import { table } from '../lib/report.js';
import { PROCESS_NAMES, type ProcessName, type Sample, type VariantSummary } from './samples.js';
import type { Variant } from './variants.js';

export const TARGET_RATIO = 0.98;

export interface ModelResult {
  readonly benchmark: 'model';
  readonly timestamp: string;
  readonly smoke: boolean;
  readonly settings: {
    readonly modelFile: string;
    readonly maxTokens: number;
    readonly contextSize: number;
    readonly parallel: number;
    readonly threads: number;
    readonly temperature: number;
    readonly topP: number;
    readonly systemPrompt: string;
    readonly prompt: string;
    readonly rounds: number;
    readonly warmup: number;
    readonly flushIntervalMs: number;
    readonly workerConcurrency: number;
  };
  readonly machine: { readonly node: string; readonly cpus: number; readonly cpuModel: string; readonly loadBefore: number[]; readonly loadAfter: number[] };
  readonly redis: { readonly own: boolean; readonly version: string };
  /** The worker's own "local model loaded" log line: proof it ran the same model the same way. */
  readonly workerModel: Record<string, unknown>;
  readonly processes: { readonly redis: number | null; readonly gateway: number; readonly worker: number };
  readonly variants: readonly Variant[];
  readonly summary: Partial<Record<Variant, VariantSummary>>;
  readonly ratios: {
    readonly pipelineOverRaw: number;
    readonly pipelineOverProvider: number;
    readonly providerOverRaw: number;
    readonly pairedPipelineOverRaw: number;
    readonly pairedPipelineOverProvider: number;
    readonly pairedProviderOverRaw: number;
    readonly inprocessOverProvider?: number;
    readonly pairedInprocessOverProvider?: number;
  };
  readonly target: number;
  readonly targetMet: boolean;
  readonly sameText: boolean;
  readonly samples: readonly Sample[];
}

const pct = (value: number): string => `${(value * 100).toFixed(1)} %`;

const LABELS: Record<Variant, string> = {
  raw: 'direct: node-llama-cpp LlamaChatSession',
  provider: 'direct: LocalLlamaProvider.generate',
  pipeline: 'pipeline: WebSocket → gateway → Redis → worker → Redis → gateway → WebSocket',
  inprocess: 'diagnostic: the same pipeline with gateway and worker in the bench process',
};

export function modelMarkdown(result: ModelResult): string {
  const { summary, ratios, settings } = result;
  const rows = result.variants.flatMap((variant) => {
    const s = summary[variant];
    if (s === undefined) return [];
    return [[LABELS[variant], s.medianTokensPerSecond.toFixed(1), s.medianDecodeTokensPerSecond.toFixed(1), s.medianTotalMs.toFixed(1), s.medianTtftMs.toFixed(2), s.medianTailMs.toFixed(2), String(s.tokens), String(s.medianPieces)]];
  });
  return [
    `# bench:model — ${result.timestamp}${result.smoke ? ' (smoke run: not a measurement)' : ''}`,
    '',
    `Model ${settings.modelFile} (${settings.contextSize}-token context, ${settings.parallel} sequences, ${settings.threads} thread(s), temperature ${settings.temperature}, top-p ${settings.topP}), ` +
      `max ${settings.maxTokens} new tokens, prompt ${JSON.stringify(settings.prompt)}; ${settings.rounds} rounds (+${settings.warmup} warm-up) interleaved with rotating order. ` +
      `Redis ${result.redis.version} (${result.redis.own ? 'own redis-server, no persistence' : 'REDIS_URL'}); worker flush interval ${settings.flushIntervalMs} ms. ` +
      `Machine: ${result.machine.cpus} × ${result.machine.cpuModel}, load ${result.machine.loadBefore.join('/')} → ${result.machine.loadAfter.join('/')}, Node ${result.machine.node}.`,
    '',
    table(['variant', 'tokens/s (median)', 'streaming tokens/s', 'total ms', 'time to first text ms', 'tail ms', 'tokens', 'pieces'], rows),
    '',
    `**pipeline ÷ direct (node-llama-cpp): ${pct(ratios.pipelineOverRaw)}** (median of per-round ratios ${pct(ratios.pairedPipelineOverRaw)}); target ≥ ${pct(TARGET_RATIO)}: ${result.targetMet ? 'met' : 'NOT met'}.`,
    `pipeline ÷ LocalLlamaProvider: ${pct(ratios.pipelineOverProvider)} (paired ${pct(ratios.pairedPipelineOverProvider)}); LocalLlamaProvider ÷ node-llama-cpp: ${pct(ratios.providerOverRaw)} (paired ${pct(ratios.pairedProviderOverRaw)}).`,
    ...(ratios.inprocessOverProvider === undefined ? [] : [`in-process pipeline ÷ LocalLlamaProvider: ${pct(ratios.inprocessOverProvider)} (paired ${pct(ratios.pairedInprocessOverProvider ?? Number.NaN)}).`]),
    `Every variant produced the same text: ${result.sameText ? 'yes' : 'NO'}.`,
    '',
    ...cpuTable(result),
    'tokens/s = tokens of the received text (model tokenizer) ÷ (request → end of answer). "streaming tokens/s" leaves out the time to the first text. ' +
      'tail = last text → end (for the pipeline: last delta → done frame).',
    '',
  ].join('\n');
}

function cpuTable(result: ModelResult): string[] {
  const names = PROCESS_NAMES.filter((name) => result.variants.some((variant) => result.summary[variant]?.cpu[name] !== undefined));
  if (names.length === 0) return [];
  const cell = (variant: Variant, name: ProcessName): string => {
    const use = result.summary[variant]?.cpu[name];
    return use === undefined ? '–' : `${use.runMs.toFixed(1)} / ${use.waitMs.toFixed(1)}`;
  };
  return [
    'CPU per answer, median ms on a CPU / ms runnable but waiting for one (all threads; /proc schedstat). The bench process is the client in the pipeline rounds.',
    '',
    table(['variant', ...names], result.variants.map((variant) => [variant, ...names.map((name) => cell(variant, name))])),
    '',
  ];
}
