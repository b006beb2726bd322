import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { LOOPBACK, labLayout, portsOf } from './layout.ts';

/** Whether `port` can be bound on `host` right now (tried for real, then released). */
export function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** The ports of `wanted` that cannot be bound, in the order given. */
export async function busyPorts<T extends { port: number }>(
  wanted: readonly T[],
  host: string,
): Promise<T[]> {
  const free = await Promise.all(wanted.map((w) => portIsFree(w.port, host)));
  return wanted.filter((_, i) => !free[i]);
}

const EPHEMERAL_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';

/** The ports the kernel hands out to outgoing connections (Linux), else the usual 32768–60999. */
export function ephemeralRange(file = EPHEMERAL_RANGE_FILE): {
  readonly first: number;
  readonly last: number;
} {
  try {
    const [first, last] = readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    if (
      Number.isInteger(first) &&
      Number.isInteger(last) &&
      (first as number) > 0 &&
      (last as number) >= (first as number)
    ) {
      return { first: first as number, last: last as number };
    }
  } catch {
    // Not Linux, or no /proc: the usual range.
  }
  return { first: 32_768, last: 60_999 };
}

function ephemeralStart(): number {
  return ephemeralRange().first;
}

/**
 * Why a lab at these ports may lose one to an outgoing connection: the ones inside the kernel's
 * ephemeral range, where the kernel picks the local port of every connection this machine opens
 * (a gateway's to its backends, a browser's); undefined when none is.
 */
export function ephemeralWarning(
  ports: readonly { readonly port: number }[],
  range = ephemeralRange(),
): string | undefined {
  const inside = ports.map((p) => p.port).filter((port) => port >= range.first && port <= range.last);
  if (inside.length === 0) return undefined;
  const span = `${Math.min(...inside)}-${Math.max(...inside)}`;
  return `ports ${span} are inside the kernel's ephemeral range ${range.first}-${range.last} (${EPHEMERAL_RANGE_FILE}): an outgoing connection can take one of them before its instance binds it, and that instance fails to start; a --port-base that keeps the lab below ${range.first} (e.g. 18000) avoids it`;
}

/**
 * A port base from 20000 whose every lab port can be bound right now, for labs started beside
 * another (tests, benchmarks). The whole range stays below the ephemeral ports: there the
 * kernel picks the local ports of outgoing connections, and a gateway's pooled connection
 * could hold a port an instance is about to listen on.
 */
export async function findFreePortBase(): Promise<number> {
  const ports = portsOf(labLayout(20_000)).map((p) => p.port);
  const span = Math.max(...ports) - 20_000;
  const slots = Math.floor((ephemeralStart() - 1 - span - 20_000) / 10);
  if (slots < 1) throw new Error('no room for a lab between port 20000 and the ephemeral ports');
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 10 * Math.floor(Math.random() * slots);
    if ((await busyPorts(portsOf(labLayout(base)), LOOPBACK)).length === 0) return base;
  }
  throw new Error('no free port range found below the ephemeral ports after 50 tries');
}
