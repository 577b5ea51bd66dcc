import { memo, useMemo, useSyncExternalStore, type MouseEvent } from 'react';
import { currentHighlighter, subscribeHighlighter } from '../render/highlighter.js';
import { renderMarkdown } from '../render/markdown.js';
import { copyText } from './copy.js';

const COPIED_MS = 1500;

/** Copy buttons are part of the rendered HTML, so one delegated handler serves them all. */
function onCopyClick(event: MouseEvent<HTMLDivElement>): void {
  const target = event.target;
  if (!(target instanceof Element)) return;
  const button = target.closest('[data-copy-code]');
  if (!(button instanceof HTMLButtonElement)) return;
  const code = button.closest('.code-block')?.querySelector('code')?.textContent ?? '';
  void copyText(code).then((ok) => {
    const label = button.getAttribute('aria-label') ?? 'Copy code';
    // The label changes too, or a screen reader would never hear that it worked.
    button.textContent = ok ? 'Copied' : 'Copy failed';
    button.setAttribute('aria-label', button.textContent);
    window.setTimeout(() => {
      button.textContent = 'Copy';
      button.setAttribute('aria-label', label);
    }, COPIED_MS);
  });
}

interface MarkdownProps {
  readonly text: string;
  readonly streaming?: boolean;
}

export const Markdown = memo(function Markdown({ text, streaming = false }: MarkdownProps) {
  // Rendering again once the highlighter chunk arrives turns plain code blocks into coloured ones.
  const highlight = useSyncExternalStore(subscribeHighlighter, currentHighlighter);
  const html = useMemo(() => renderMarkdown(text, highlight), [text, highlight]);
  return (
    <div
      className={streaming ? 'markdown message-content streaming' : 'markdown message-content'}
      onClick={onCopyClick}
      // The one place HTML enters the DOM: renderMarkdown escapes all markup from its input
      // (markdown-it, html disabled, allow-listed link schemes); see render/markdown.ts.
      dangerouslySetInnerHTML={{ __html: html }}
    />
  );
});
