/**
 * Event ids are Redis stream ids ("<ms>-<n>", or "0" for "before everything"), shared by the
 * gateway, the worker and the browser. They must be compared numerically: as strings "999-0"
 * would sort after "1000-0". No dependencies, so the web bundle imports this file as it is.
 */

/** The shape of an event id: "0", or two decimal parts of at most 20 digits ("1712345678901-0"). */
export const EVENT_ID_PATTERN = /^(0|\d{1,20}-\d{1,20})$/;

/** Negative when a < b, zero when equal, positive when a > b; "0" sorts first. */
export function compareEventIds(a: string, b: string): number {
  const aDash = a.indexOf('-');
  const bDash = b.indexOf('-');
  return (
    compareDecimals(aDash < 0 ? a : a.slice(0, aDash), bDash < 0 ? b : b.slice(0, bDash)) ||
    compareDecimals(aDash < 0 ? '0' : a.slice(aDash + 1), bDash < 0 ? '0' : b.slice(bDash + 1))
  );
}

/** Compares non-negative decimal strings of any length without parsing them (runs per event). */
function compareDecimals(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}
