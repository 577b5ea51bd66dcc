/**
 * Syntax highlighting, loaded on demand (its own chunk): most answers have no code, and the
 * first paint should not wait for it. A short list of languages keeps the chunk small; others
 * render as plain, escaped code.
 */
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

const LANGUAGES = { bash, c, cpp, css, diff, go, java, javascript, json, python, rust, sql, typescript, xml, yaml };
type Language = keyof typeof LANGUAGES;
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

const ALIASES: Readonly<Record<string, Language>> = {
  sh: 'bash', shell: 'bash', zsh: 'bash', console: 'bash', js: 'javascript', jsx: 'javascript', mjs: 'javascript',
  ts: 'typescript', tsx: 'typescript', py: 'python', html: 'xml', svg: 'xml', yml: 'yaml', rs: 'rust', 'c++': 'cpp', golang: 'go',
};

function knownLanguage(info: string): Language | undefined {
  const name = info.toLowerCase();
  return Object.hasOwn(LANGUAGES, name) ? (name as Language) : ALIASES[name];
}

/** Highlighting the same block again on every streamed token would be wasted work. */
const cache = new Map<string, Highlighted>();
const CACHE_LIMIT = 200;

export interface Highlighted {
  /** HTML: highlight.js escapes the code and adds only its own `<span class>` tags. */
  readonly html: string;
  /** Our name of the language, never the author's text: safe as a class name. */
  readonly language: Language;
}

export function highlight(code: string, info: string): Highlighted | undefined {
  const language = knownLanguage(info);
  if (language === undefined) return undefined;
  const key = `${language}\u0000${code}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const result = { html: hljs.highlight(code, { language, ignoreIllegals: true }).value, language };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, result);
  return result;
}
