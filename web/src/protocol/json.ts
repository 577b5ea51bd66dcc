/** Reading JSON from the server without trusting its shape: everything is checked before use. */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The body as JSON, or undefined when it is not JSON (an empty 204, a proxy's HTML error page). */
export async function readJson(response: Response): Promise<unknown> {
  try {
    return (await response.json()) as unknown;
  } catch {
    return undefined;
  }
}
