/** "1st", "2nd", "3rd", "4th", … "11th", "12th", "13th", "21st". */
export function ordinal(value: number): string {
  const tens = value % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][value % 10] ?? 'th');
  return `${value}${suffix}`;
}

/** A place in the queue as people read it: "3rd in line, about 12 s". */
export function formatPlace(position: number, etaMs?: number): string {
  const place = `${ordinal(position)} in line`;
  if (etaMs === undefined) return place;
  const seconds = Math.max(1, Math.round(etaMs / 1000));
  return `${place}, about ${seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`}`;
}

/** Dates as people read them: a time for today, a date and time otherwise. */
export function formatWhen(iso: string, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const sameDay = date.toDateString() === now.toDateString();
  const options: Intl.DateTimeFormatOptions = sameDay
    ? { hour: '2-digit', minute: '2-digit' }
    : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(undefined, options).format(date);
}
