/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and says where the time went: the functions with
 * the most self time, and self time by origin (Parley's src/, each npm package, Node internals,
 * garbage collection).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { round3 } from './stats.js';

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly file: string;
  /** Sampled time that was not idle, ms. */
  readonly activeMs: number;
  readonly byOrigin: Array<{ origin: string; ms: number; percent: number }>;
  readonly topFunctions: Array<{ function: string; origin: string; ms: number; percent: number }>;
}

function origin(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : 'native/V8';
  if (url.startsWith('node:')) return 'node internals';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules?.[1] !== undefined) return modules[1];
  const local = /\/(src|bench|test)\/(.*)$/.exec(url);
  if (local?.[1] !== undefined) return `${local[1]}/`;
  return 'other';
}

function location(node: CpuProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url === '' ? '' : ` ${url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${lineNumber + 1}`;
  return `${functionName === '' ? '(anonymous)' : functionName}${file}`;
}

export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const byFunction = new Map<string, { origin: string; us: number }>();
  const byOrigin = new Map<string, number>();
  let active = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    active += us;
    const from = origin(node.callFrame.url, node.callFrame.functionName);
    byOrigin.set(from, (byOrigin.get(from) ?? 0) + us);
    const key = location(node);
    const entry = byFunction.get(key) ?? { origin: from, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const percent = (us: number) => round3((us / Math.max(1, active)) * 100);
  return {
    file: basename(path),
    activeMs: round3(active / 1000),
    byOrigin: [...byOrigin].sort(([, a], [, b]) => b - a).map(([name, us]) => ({ origin: name, ms: round3(us / 1000), percent: percent(us) })),
    topFunctions: [...byFunction]
      .sort(([, a], [, b]) => b.us - a.us)
      .slice(0, top)
      .map(([name, entry]) => ({ function: name, origin: entry.origin, ms: round3(entry.us / 1000), percent: percent(entry.us) })),
  };
}

/** One summary per process folder (see stack.ts): its biggest profile is the main thread's. */
export function summarizeProfiles(dir: string): ProfileSummary[] {
  let folders: string[];
  try {
    folders = readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
  } catch {
    return [];
  }
  return folders.flatMap((folder) => {
    const files = readdirSync(join(dir, folder))
      .filter((file) => file.endsWith('.cpuprofile'))
      .map((file) => ({ path: join(dir, folder, file), size: statSync(join(dir, folder, file)).size }))
      .sort((a, b) => b.size - a.size);
    const main = files[0];
    return main === undefined ? [] : [{ ...summarizeProfile(main.path), file: `${folder} (${basename(main.path)})` }];
  });
}
