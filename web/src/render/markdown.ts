/**
 * Markdown → HTML for answers. This is the only producer of HTML in the app, and it is safe by
 * construction: markdown-it with `html: false` escapes every tag in the input, links must pass an
 * allow-list of schemes, images become plain links (an image URL chosen by a model is a way to
 * send data to a third party without a click), and code is escaped by highlight.js.
 */
import MarkdownIt from 'markdown-it';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

// A short list keeps the bundle small; other languages render as plain, escaped code.
const LANGUAGES = { bash, c, cpp, css, diff, go, java, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

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

md.renderer.rules.fence = (tokens, index) => {
  const token = tokens[index];
  return token === undefined ? '' : codeBlock(token.content, token.info.trim().split(/\s+/)[0] ?? '');
};

md.renderer.rules.code_block = (tokens, index) => {
  const token = tokens[index];
  return token === undefined ? '' : codeBlock(token.content, '');
};

const ALIASES: Readonly<Record<string, keyof typeof LANGUAGES>> = {
  sh: 'bash', shell: 'bash', zsh: 'bash', console: 'bash', js: 'javascript', jsx: 'javascript', mjs: 'javascript',
  ts: 'typescript', tsx: 'typescript', py: 'python', html: 'xml', svg: 'xml', yml: 'yaml', rs: 'rust', 'c++': 'cpp', golang: 'go',
};

function knownLanguage(info: string): keyof typeof LANGUAGES | undefined {
  const name = info.toLowerCase();
  if (Object.hasOwn(LANGUAGES, name)) return name as keyof typeof LANGUAGES;
  return ALIASES[name];
}

/** Highlighting the same block again on every streamed token would be wasted work. */
const highlightCache = new Map<string, string>();
const CACHE_LIMIT = 200;

function highlight(code: string, language: keyof typeof LANGUAGES | undefined): string {
  if (language === undefined) return escapeHtml(code);
  const key = `${language}\u0000${code}`;
  const cached = highlightCache.get(key);
  if (cached !== undefined) return cached;
  // highlight.js escapes the code text itself; its output holds only its own <span class> tags.
  const html = hljs.highlight(code, { language, ignoreIllegals: true }).value;
  if (highlightCache.size >= CACHE_LIMIT) highlightCache.clear();
  highlightCache.set(key, html);
  return html;
}

function codeBlock(code: string, info: string): string {
  const language = knownLanguage(info);
  // The label is text from the input: escaped, and never used as a class name.
  const label = info === '' ? 'text' : escapeHtml(info.slice(0, 24));
  const languageClass = language === undefined ? '' : ` language-${language}`;
  return (
    '<div class="code-block"><div class="code-head">' +
    `<span class="code-lang">${label}</span>` +
    '<button type="button" class="copy-button" data-copy-code="" aria-label="Copy code">Copy</button>' +
    `</div><pre><code class="hljs${languageClass}">${highlight(code, language)}</code></pre></div>\n`
  );
}

/** Renders Markdown from an untrusted source to HTML that contains no markup from that source. */
export function renderMarkdown(source: string): string {
  return md.render(source);
}
