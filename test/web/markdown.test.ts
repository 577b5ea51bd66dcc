import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { currentHighlighter, loadHighlighter } from '../../web/src/render/highlighter.js';
import { isSafeUrl, renderMarkdown } from '../../web/src/render/markdown.js';

/** Tags and attributes the renderer may produce; anything else is markup that leaked through. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  p: [], br: [], strong: [], em: [], s: [], code: ['class'], pre: [], blockquote: [], hr: [],
  ul: [], ol: ['start'], li: [], h1: [], h2: [], h3: [], h4: [], h5: [], h6: [],
  table: [], thead: [], tbody: [], tr: [], th: ['style'], td: ['style'],
  a: ['href', 'target', 'rel'], div: ['class'], span: ['class'], button: ['type', 'class', 'data-copy-code', 'aria-label'],
};

const TAG = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w-]+(?:="[^"<>]*")?)*)\s*(\/?)>/g;
const ATTRIBUTE = /\s+([\w-]+)(?:="([^"]*)")?/g;

/**
 * Checks HTML the way a browser would see it, with no DOM: every `<` must open one of the
 * allowed tags with allowed attributes; links must be http(s)/mailto with the safe rel/target.
 */
function assertSafeHtml(html: string, context: string): void {
  const tags = [...html.matchAll(TAG)];
  const lessThans = [...html.matchAll(/</g)].length;
  assert.equal(tags.length, lessThans, `${context}: every "<" starts a known tag in ${html}`);
  for (const [, closing = '', rawName = '', rawAttributes = ''] of tags) {
    const name = rawName.toLowerCase();
    const allowed = ALLOWED[name];
    assert.ok(allowed, `${context}: tag <${name}> is not allowed in ${html}`);
    const attributes = new Map([...rawAttributes.matchAll(ATTRIBUTE)].map(([, key = '', value = '']) => [key.toLowerCase(), value]));
    for (const [key, value] of attributes) {
      assert.ok(allowed.includes(key), `${context}: attribute ${key} on <${name}> in ${html}`);
      if (key === 'style') assert.match(value, /^text-align:(left|right|center)$/, context);
      if (key === 'class') assert.match(value, /^[\w -]*$/, context);
    }
    if (closing === '/') {
      assert.equal(rawAttributes, '', `${context}: attributes on a closing tag in ${html}`);
      continue;
    }
    if (name === 'a') {
      assert.ok(isSafeUrl(decodeEntities(attributes.get('href') ?? '')), `${context}: unsafe href in ${html}`);
      assert.equal(attributes.get('rel'), 'noopener noreferrer', context);
      assert.equal(attributes.get('target'), '_blank', context);
    }
  }
  assert.doesNotMatch(html, /\son\w+="/i, `${context}: event handler attribute`);
}

function decodeEntities(text: string): string {
  return text.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

const ATTACKS: readonly string[] = [
  '<img src=x onerror=alert(1)>',
  '<img src=x onerror="window.__xss=1">',
  '<script>alert(1)</script>',
  '<svg onload=alert(1)>',
  '<svg><script>alert(1)</script></svg>',
  '"><iframe src=javascript:alert(1)>',
  "'><img src=x onerror=alert(1)>",
  '<a href="javascript:alert(1)">click</a>',
  '[click](javascript:alert(1))',
  '[click](JaVaScRiPt:alert(1))',
  '[click](javascript&#58;alert(1))',
  '[click](java\tscript:alert(1))',
  '[click](  javascript:alert(1))',
  '[click](vbscript:msgbox(1))',
  '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '![x](javascript:alert(1))',
  '![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)',
  '![x" onerror="alert(1)](https://example.com/a.png)',
  '[x](https://example.com/"onmouseover="alert(1))',
  '[x](<https://example.com/" onclick="alert(1)>)',
  '<https://example.com/"><script>alert(1)</script>>',
  'javascript:alert(1) and https://example.com/<script>',
  '```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```',
  '```"><img src=x onerror=alert(1)>\ncode\n```',
  '```js onload="alert(1)"\nlet a = 1;\n```',
  '    <img src=x onerror=alert(1)>',
  '`<img src=x onerror=alert(1)>`',
  '<details open ontoggle=alert(1)>',
  '<style>*{display:none}</style>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '[a]: javascript:alert(1)\n\n[link][a]',
  '| <img src=x onerror=alert(1)> | b |\n|:-|-:|\n| <script> | [x](javascript:alert(1)) |',
  '> <iframe srcdoc="<script>alert(1)</script>">',
  '*<b onmouseover=alert(1)>bold</b>*',
  '&lt;script&gt;alert(1)&lt;/script&gt;',
  '&#60;img src=x onerror=alert(1)&#62;',
];

describe('renderMarkdown: XSS', () => {
  it('the checker itself rejects live markup', () => {
    for (const leak of ['<img src=x onerror=alert(1)>', '<p onclick="x">a</p>', '<a href="javascript:alert(1)" target="_blank" rel="noopener noreferrer">x</a>', '<script>x</script>', '<a href="https://a.b">x</a>']) {
      assert.throws(() => assertSafeHtml(leak, 'control'), leak);
    }
  });

  for (const highlighted of [false, true]) {
    describe(highlighted ? 'with the highlighter loaded' : 'before the highlighter loads', () => {
      before(async () => {
        if (highlighted) await loadHighlighter();
        assert.equal(currentHighlighter() !== undefined, highlighted);
      });
      for (const attack of ATTACKS) {
        it(`renders ${JSON.stringify(attack)} as text`, () => {
          assertSafeHtml(renderMarkdown(attack), attack);
        });
      }
    });
  }

  it('shows the attack text to the reader, escaped', () => {
    const html = renderMarkdown('<img src=x onerror=alert(1)>');
    assert.equal(html, '<p>&lt;img src=x onerror=alert(1)&gt;</p>\n');
  });

  it('keeps HTML inside code fences as visible, escaped code', () => {
    const html = renderMarkdown('```\n<script>alert(1)</script>\n```');
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(html, /<script/);
  });

  it('turns images into links (no request to a URL a model chose) and drops unsafe ones', () => {
    assert.equal(
      renderMarkdown('![a cat](https://example.com/cat.png)'),
      '<p><a href="https://example.com/cat.png" target="_blank" rel="noopener noreferrer">a cat</a></p>\n',
    );
    assert.doesNotMatch(renderMarkdown('![x](data:image/png;base64,AAAA)'), /<a |<img/);
  });
});

describe('renderMarkdown: links', () => {
  it('opens links in a new tab without an opener or referrer', () => {
    assert.equal(
      renderMarkdown('[docs](https://example.com/docs)'),
      '<p><a href="https://example.com/docs" target="_blank" rel="noopener noreferrer">docs</a></p>\n',
    );
  });

  it('linkifies bare http(s) URLs and e-mail addresses, safely', () => {
    const html = renderMarkdown('See https://example.com/a?b=1&c=2 or write to me@example.com');
    assert.match(html, /<a href="https:\/\/example\.com\/a\?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">/);
    assert.match(html, /<a href="mailto:me@example\.com" target="_blank" rel="noopener noreferrer">/);
    assertSafeHtml(html, 'linkify');
  });

  it('accepts only http, https and mailto', () => {
    for (const url of ['https://a.b', 'http://a.b/c', 'mailto:x@y.z', 'HTTPS://A.B']) assert.ok(isSafeUrl(url), url);
    for (const url of ['javascript:alert(1)', 'data:text/html,x', 'vbscript:x', 'file:///etc/passwd', '//evil.com', '/relative', '#top', 'ftp://x']) {
      assert.ok(!isSafeUrl(url), url);
    }
  });
});

describe('renderMarkdown: code blocks', () => {
  before(() => loadHighlighter());

  it('highlights a known language and adds a copy button', () => {
    const html = renderMarkdown('```ts\nconst answer: number = 42;\n```');
    assert.match(html, /<code class="hljs language-typescript">/);
    assert.match(html, /<span class="hljs-keyword">const<\/span>/);
    assert.match(html, /<button type="button" class="copy-button" data-copy-code="" aria-label="Copy code">Copy<\/button>/);
    assert.match(html, /<span class="code-lang">ts<\/span>/);
    assertSafeHtml(html, 'ts block');
  });

  it('renders an unknown language as plain escaped code, label escaped', () => {
    const html = renderMarkdown('```<b>weird</b>\n<i>x</i>\n```');
    assert.match(html, /<code class="hljs">&lt;i&gt;x&lt;\/i&gt;\n<\/code>/);
    assert.match(html, /<span class="code-lang">&lt;b&gt;weird&lt;\/b&gt;<\/span>/);
  });

  it('renders an unfinished fence (mid-stream) as code', () => {
    assert.match(renderMarkdown('Here:\n```python\nprint("hi'), /<code class="hljs language-python">/);
  });
});
