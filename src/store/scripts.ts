/**
 * Lua scripts: every change to a session that must be atomic happens in one of these. Each lives
 * in its own file in ./lua/ with a header naming its keys, arguments and replies; they are read
 * once when this module loads (SHA1 computed then) and sent by SHA. A line `--- @include "name"`
 * stands for ./lua/name.lua: the session scripts all begin with the session prelude (the seven
 * session keys, the first three arguments and the helpers, see lua/session-prelude.lua).
 *
 * Each session script exists twice: publishing live events with PUBLISH (one Redis; Redis 6.2
 * has no SPUBLISH) and with SPUBLISH (Redis Cluster: a shard channel lives on the node of its
 * slot, and the live channel carries the session's hash tag, so the script stays in one slot;
 * PUBLISH would be broadcast to every node of the cluster).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sessionKeys } from '../contracts/keys.js';

const LUA_DIR = new URL('./lua/', import.meta.url);
const INCLUDE = /^--- @include "([\w-]+)"$/gm;
/** The prelude's one line that differs between the two variants. */
const PUBLISH_LINE = "local PUBLISH = 'PUBLISH'";

const sources = new Map<string, string>();

/** A script file's text with its includes resolved; each file is read once. */
function readLua(file: string): string {
  let source = sources.get(file);
  if (source === undefined) {
    source = readFileSync(new URL(`${file}.lua`, LUA_DIR), 'utf8').replace(INCLUDE, (_line, name: string) => readLua(name));
    sources.set(file, source);
  }
  return source;
}

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function luaScript(name: string, source: string): LuaScript {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** The script in ./lua/<file>.lua, named in camelCase ("take-address-slot" → "takeAddressSlot"). */
export function loadScript(file: string): LuaScript {
  return luaScript(file.replace(/-(\w)/g, (_dash, letter: string) => letter.toUpperCase()), readLua(file));
}

/** A session script in both publishing variants (see top). */
export interface SessionScript extends LuaScript {
  readonly sharded: LuaScript;
}

function sessionScript(file: string): SessionScript {
  const lua = loadScript(file);
  if (!lua.source.includes(PUBLISH_LINE)) throw new Error(`${file}.lua does not include the session prelude`);
  return { ...lua, sharded: luaScript(lua.name, lua.source.replace(PUBLISH_LINE, "local PUBLISH = 'SPUBLISH'")) };
}

/** Every session script: `acceptMessage` is the file lua/accept-message.lua, and so on. */
const SESSION_SCRIPT_NAMES = ['acceptMessage', 'touchSession', 'inspectSession', 'readSession', 'requestStop', 'startTurn', 'appendDelta', 'finishTurn', 'markWake', 'renewLease', 'switchBranch'] as const;
const kebabCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
const sessionScripts = Object.fromEntries(SESSION_SCRIPT_NAMES.map((name) => [name, sessionScript(kebabCase(name))])) as Record<(typeof SESSION_SCRIPT_NAMES)[number], SessionScript>;
export const { acceptMessage, touchSession, inspectSession, readSession, requestStop, startTurn, appendDelta, finishTurn, markWake, renewLease, switchBranch } = sessionScripts;
export const forgetUnanswered = loadScript('forget-unanswered');

export interface ScriptReply {
  readonly reply: unknown;
  /**
   * True when Redis did not have the script cached (first use, or after a restart or failover)
   * and it was sent again in full: it then ran after commands sent behind its first attempt.
   */
  readonly resent: boolean;
}

export interface ScriptArguments {
  keys: string[];
  arguments: string[];
}

/** The commands scripts need: a client for one Redis or a cluster client. */
export interface ScriptRedis {
  evalSha(sha: string, options: ScriptArguments): Promise<unknown>;
  eval(source: string, options: ScriptArguments): Promise<unknown>;
}

/** Runs a script by SHA, sending its source when Redis does not have it cached. */
export async function runScript(client: ScriptRedis, lua: LuaScript, keys: readonly string[], args: readonly string[]): Promise<ScriptReply> {
  const options = { keys: [...keys], arguments: [...args] };
  try {
    return { reply: await client.evalSha(lua.sha, options), resent: false };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return { reply: await client.eval(lua.source, options), resent: true };
    }
    throw error;
  }
}

export interface SessionScriptOptions {
  readonly prefix: string;
  readonly sessionTtlSeconds: number;
  readonly eventsMaxLen: number;
  /** Live events over sharded pub/sub (SPUBLISH): on a Redis Cluster. */
  readonly shardedPubSub?: boolean;
}

/**
 * Runs a session script with the standard seven keys and three leading arguments (see top), plus
 * `extraKeys` after them for the scripts that document one.
 */
export function runSessionScript(
  client: ScriptRedis,
  options: SessionScriptOptions,
  lua: SessionScript,
  token: string,
  extra: readonly string[],
  extraKeys: readonly string[] = [],
): Promise<ScriptReply> {
  const keys = sessionKeys(options.prefix, token);
  return runScript(
    client,
    options.shardedPubSub === true ? lua.sharded : lua,
    [keys.session, keys.messages, keys.events, keys.dedupe, keys.errors, keys.lease, keys.cancel, ...extraKeys],
    [keys.live, String(options.sessionTtlSeconds * 1000), String(options.eventsMaxLen), ...extra],
  );
}
