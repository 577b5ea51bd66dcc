/**
 * Markdown → HTML for answers. This is the only producer of HTML in the app, and it is safe by
 * construction: markdown-it with `html: false` escapes every tag in the input, links must pass an
 * allow-list of schemes, images become plain links (an image URL chosen by a model is a way to
 * send data to a third party without a click), and code is escaped (by highlight.js once its
 * chunk has loaded, by markdown-it before).
 */
import MarkdownIt from 'markdown-it';
import { currentHighlighter, loadHighlighter, type Highlight } from './highlighter.js';

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

/** Only absolute web and mail links; markdown-it hands over the URL already normalised. */
export function isSafeUrl(url: string): boolean {
  return SAFE_URL.test(url.trim());
}

const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });
md.validateLink = isSafeUrl;
const { escapeHtml } = md.utils;

md.renderer.rules.link_open = (tokens, index, options, _env, self) => {
  const token = tokens[index];
  if (token !== undefined) {
    token.attrSet('target', '_blank');
    token.attrSet('rel', 'noopener noreferrer');
  }
  return self.renderToken(tokens, index, options);
};

md.renderer.rules.image = (tokens, index) => {
  const token = tokens[index];
  if (token === undefined) return '';
  const alt = token.content.trim() === '' ? 'image' : token.content;
  const src = String(token.attrGet('src') ?? '');
  if (!isSafeUrl(src)) return escapeHtml(alt);
  return `<a href="${escapeHtml(src)}" target="_blank" rel="noopener noreferrer">${escapeHtml(alt)}</a>`;
};

/** The highlighter of the rendering in progress (rendering is synchronous: one at a time). */
let renderingWith: Highlight | undefined;

md.renderer.rules.fence = (tokens, index) => {
  const token = tokens[index];
  return token === undefined ? '' : codeBlock(token.content, token.info.trim().split(/\s+/)[0] ?? '', renderingWith);
};

md.renderer.rules.code_block = (tokens, index) => {
  const token = tokens[index];
  return token === undefined ? '' : codeBlock(token.content, '', renderingWith);
};

function codeBlock(code: string, info: string, highlighter: Highlight | undefined): string {
  if (highlighter === undefined && info !== '') void loadHighlighter();
  const highlighted = highlighter?.(code, info);
  // The label is text from the input: escaped, and never used as a class name.
  const label = info === '' ? 'text' : escapeHtml(info.slice(0, 24));
  const languageClass = highlighted === undefined ? '' : ` language-${highlighted.language}`;
  return (
    '<div class="code-block"><div class="code-head">' +
    `<span class="code-lang">${label}</span>` +
    '<button type="button" class="copy-button" data-copy-code="" aria-label="Copy code">Copy</button>' +
    `</div><pre><code class="hljs${languageClass}">${highlighted?.html ?? escapeHtml(code)}</code></pre></div>\n`
  );
}

/** Renders Markdown from an untrusted source to HTML that contains no markup from that source. */
export function renderMarkdown(source: string, highlight: Highlight | undefined = currentHighlighter()): string {
  renderingWith = highlight;
  return md.render(source);
}
