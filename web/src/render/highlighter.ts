/** Loads the highlighter chunk once and tells subscribers (mounted answers) to render again. */
import type { Highlighted } from './languages.js';

export type Highlight = (code: string, info: string) => Highlighted | undefined;

let current: Highlight | undefined;
let loading: Promise<void> | undefined;
const listeners = new Set<() => void>();

/** The highlighter once loaded (for useSyncExternalStore too: it changes once, when it arrives). */
export function currentHighlighter(): Highlight | undefined {
  return current;
}

export function loadHighlighter(): Promise<void> {
  loading ??= import('./languages.js').then(
    (module) => {
      current = module.highlight;
      for (const listener of listeners) listener();
    },
    () => {
      // Offline or a stale deployment: code stays plain; a later block may try again.
      loading = undefined;
    },
  );
  return loading;
}

export function subscribeHighlighter(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
