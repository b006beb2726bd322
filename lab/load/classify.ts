/**
 * How a load request ended, in the lab's words (see LAB_BRIEF "Words the lab uses"): `ok` and `degraded`
 * are successes; everything else is an error classed by kind.
 */

export type ResponseClass =
  | 'ok'
  | 'degraded'
  | '4xx'
  | `5xx:${number}`
  | `http:${number}`
  | 'timeout'
  | 'connection';

export const SUCCESS_CLASSES: ReadonlySet<string> = new Set(['ok', 'degraded']);

/**
 * A status line, and whether the gateway marked the page degraded (`x-degraded` naming what is missing).
 * Statuses outside 2xx/4xx/5xx (the gateway sends none) are kept apart as `http:<code>`.
 */
export function classifyResponse(
  status: number,
  degradedHeader: string | string[] | undefined,
): ResponseClass {
  if (status >= 200 && status < 300) return hasValue(degradedHeader) ? 'degraded' : 'ok';
  if (status >= 400 && status < 500) return '4xx';
  if (status >= 500 && status < 600) return `5xx:${status}`;
  return `http:${status}`;
}

/**
 * A request that got no response: `timeout` when our own deadline fired (or undici's connect/headers/body
 * timers, which the generator sets above the deadline, did), `connection` for refused, reset or any other
 * network failure.
 */
export function classifyFailure(error: unknown, timedOut: boolean): ResponseClass {
  if (timedOut) return 'timeout';
  const code = (error as { code?: unknown } | null)?.code;
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return 'timeout';
  }
  return 'connection';
}

function hasValue(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  return Array.isArray(header) ? header.some((v) => v.trim() !== '') : header.trim() !== '';
}
