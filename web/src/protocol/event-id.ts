/**
 * Event ids are Redis stream ids ("<ms>-<n>", or "0" for "before everything"). They must be
 * compared numerically: as strings "999-0" would sort after "1000-0".
 */
function parts(id: string): [bigint, bigint] {
  const [ms = '0', n = '0'] = id.split('-');
  try {
    return [BigInt(ms), BigInt(n)];
  } catch {
    return [0n, 0n];
  }
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareEventIds(a: string, b: string): number {
  const [aMs, aN] = parts(a);
  const [bMs, bN] = parts(b);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aN !== bN) return aN < bN ? -1 : 1;
  return 0;
}
