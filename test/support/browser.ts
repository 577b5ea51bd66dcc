/**
 * A minimal browser for the people API: keeps the cookies a gateway sets (per name, like a
 * browser's jar for one site), sends them back, and remembers the CSRF token of the last
 * sign-in so unsafe requests can carry it.
 */
export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown> | undefined;
}

export interface CallOptions {
  readonly method?: string;
  readonly json?: unknown;
  readonly body?: string | Uint8Array<ArrayBuffer>;
  readonly headers?: Readonly<Record<string, string>>;
  /** Send X-CSRF-Token: true = the remembered one, a string = that one, false/undefined = none. */
  readonly csrf?: boolean | string;
}

export class Browser {
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;

  constructor(public baseUrl: string) {}

  /** A path on baseUrl, or a whole URL (the jar is one for all, like a browser's for one host name). */
  async call(path: string, options: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.cookies.size > 0 && headers.cookie === undefined) headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    if (options.csrf === true && this.csrf !== undefined) headers['x-csrf-token'] = this.csrf;
    if (typeof options.csrf === 'string') headers['x-csrf-token'] = options.csrf;
    let body = options.body;
    if (options.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(options.json);
    }
    const url = /^https?:/.test(path) ? path : `${this.baseUrl}${path}`;
    const response = await fetch(url, { method: options.method ?? 'GET', headers, redirect: 'manual', ...(body === undefined ? {} : { body }) });
    this.keepCookies(response.headers);
    const text = await response.text();
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    if (typeof parsed?.csrf === 'string') this.csrf = parsed.csrf;
    return { status: response.status, headers: response.headers, text, body: parsed };
  }

  /** The same person (cookie jar and CSRF token) talking to another gateway. */
  on(baseUrl: string): Browser {
    const other = new Browser(baseUrl);
    for (const [name, value] of this.cookies) other.cookies.set(name, value);
    other.csrf = this.csrf;
    return other;
  }

  /** The sign-in cookie as a request header, e.g. for a WebSocket upgrade. */
  authCookie(): { cookie: string } {
    return { cookie: `parley_auth=${this.cookies.get('parley_auth') ?? ''}` };
  }

  post(path: string, json?: unknown, options: CallOptions = {}): Promise<Reply> {
    return this.call(path, { method: 'POST', ...(json === undefined ? {} : { json }), ...options });
  }

  keepCookies(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const [name, value] = [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
      const expired = /max-age=0|expires=thu, 01 jan 1970/i.test(line);
      if (value === '' || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async signUp(username: string, password = 'correct horse battery', extra: Record<string, unknown> = {}): Promise<Reply> {
    const reply = await this.post('/api/v1/auth/signup', { username, password, ...extra });
    if (reply.status !== 201) throw new Error(`sign-up of ${username} answered ${reply.status}: ${reply.text}`);
    return reply;
  }
}

let usernames = 0;

/** A username nobody has taken yet: a counter for this process, the time for runs before it. */
export function uniqueUsername(base: string): string {
  return `${base}${(usernames += 1)}x${Date.now()}`;
}

/** The attributes of the Set-Cookie line that sets `name`, lowercased (e.g. "httponly", "samesite=lax"). */
export function cookieAttributes(headers: Headers, name: string): string[] | undefined {
  const line = headers.getSetCookie().find((item) => item.startsWith(`${name}=`));
  return line?.split(';').slice(1).map((part) => part.trim().toLowerCase());
}
