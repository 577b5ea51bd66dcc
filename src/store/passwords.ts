/**
 * Password hashing with node:crypto's scrypt (built into Node, maintained with it; no native
 * add-on to build). Each hash has its own random salt and carries its parameters, so the cost
 * can be raised later and old hashes still verify:
 *
 *   scrypt$<N>$<r>$<p>$<salt, base64url>$<hash, base64url>
 *
 * Parameters: OWASP's password storage cheat sheet lists N=2^15, r=8, p=3 among the equivalent
 * minimum settings; it needs 32 MiB per hash (scrypt memory is 128·N·r bytes), a third of the
 * N=2^17 setting, which matters on a small server where several sign-ins may hash at once.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const N = 2 ** 15;
const R = 8;
const P = 3;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** The most a stored record may ask for (a tampered record must not make us allocate gigabytes). */
const MAX_MEMORY = 128 * 2 ** 17 * 8 * 2;

export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_CHARS = 256;

function scrypt(password: string, salt: Buffer, keyBytes: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, keyBytes, { ...options, maxmem: MAX_MEMORY }, (error, key) => (error === null ? resolve(key) : reject(error)));
  });
}

/** A password is 8 to 256 characters (code points) of any Unicode, except lone surrogates. */
export function isAcceptablePassword(password: unknown): password is string {
  if (typeof password !== 'string' || /\p{Surrogate}/u.test(password)) return false;
  const chars = [...password].length;
  return chars >= PASSWORD_MIN_CHARS && chars <= PASSWORD_MAX_CHARS;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, { N, r: R, p: P });
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

const RECORD = /^scrypt\$(\d{1,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{32,128})$/;

/** True when `password` matches `record`; false for a wrong password or an unreadable record. */
export async function verifyPassword(password: string, record: string): Promise<boolean> {
  const match = RECORD.exec(record);
  if (match === null) return false;
  const [, n, r, p, salt, hash] = match;
  const expected = Buffer.from(hash ?? '', 'base64url');
  try {
    const key = await scrypt(password, Buffer.from(salt ?? '', 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
    return timingSafeEqual(key, expected);
  } catch {
    return false; // parameters scrypt refuses (N not a power of two, too much memory)
  }
}

/**
 * A hash to verify against when the username does not exist, so that a wrong name takes as long
 * as a wrong password (a fast "no such user" would tell an attacker which names exist).
 */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  return decoy;
}
