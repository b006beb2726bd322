/**
 * Where every process of the local lab listens, all derived from one base port so that a
 * second lab (or a test) can move the whole range with `--port-base`.
 *
 * base+80…   one gateway per strategy (18080 naive, 18081 parallel, 18082 resilient)
 * base+90    the supervisor's control API
 * base+91    the lab's live page (`chaos-lab up`); base+92 is where `chaos-lab run` serves its own
 * base+100+10·k+i  instance i of backend k (account-1 18100, account-2 18101, archive-1 18110…)
 * base+200+10·k+i  the fault proxy in front of it: the data port the gateways call (18200…)
 * base+300+10·k+i  that proxy's admin API and readiness (18300…)
 *
 * So an instance, its proxy and the proxy's admin port share their last two digits, which
 * makes `status` and `ss -ltn` easy to read. Each backend owns a block of ten ports in each
 * hundred; replicas may use half of it (the rest is room to grow).
 */

import { GATEWAY_SERVICE } from '../../services/names.ts';
import { BACKENDS, type BackendName, STRATEGIES, type Strategy, topology } from '../../services/topology.ts';

export const DEFAULT_PORT_BASE = 18_000;
const GATEWAY_OFFSET = 80;
const CONTROL_OFFSET = 90;
const LIVE_LAB_OFFSET = 91;
const LIVE_RUN_OFFSET = 92;
const BACKEND_OFFSET = 100;
const PROXY_DATA_OFFSET = 200;
const PROXY_ADMIN_OFFSET = 300;
const BACKEND_BLOCK = 10;
/** Replicas that fit in the low half of a backend's block. */
const MAX_REPLICAS = BACKEND_BLOCK / 2;
/** The highest offset any part of the layout may use, proxies included. */
const SPAN = PROXY_ADMIN_OFFSET + BACKEND_BLOCK * BACKENDS.length - 1;

export const PORT_BASE_RANGE = { min: 1_024, max: 65_535 - SPAN } as const;

export const LOOPBACK = '127.0.0.1';

/**
 * Where `chaos-lab run` serves its live page unless told otherwise: beside the default lab's own
 * page, outside every lab's range (a run may start a lab of its own at the default base).
 */
export const DEFAULT_RUN_LIVE_PORT = DEFAULT_PORT_BASE + LIVE_RUN_OFFSET;

export type ServiceName = BackendName | typeof GATEWAY_SERVICE;

export interface InstancePlan {
  /** `account-1`, …, `gateway-resilient`. */
  readonly id: string;
  readonly service: ServiceName;
  readonly port: number;
  readonly url: string;
  /** Gateways only. */
  readonly strategy?: Strategy;
}

/** The fault proxy in front of one backend instance (a sidecar: always in the path). */
export interface ProxyPlan {
  /** `coin-1-proxy`. */
  readonly id: string;
  /** The instance it fronts, `coin-1`. */
  readonly instance: string;
  readonly service: BackendName;
  /** Raw TCP; what the gateways call instead of the instance. */
  readonly dataPort: number;
  readonly dataUrl: string;
  /** HTTP: `/__chaos/faults`, `/__chaos/stats`, `/readyz`, `/metrics`. */
  readonly adminPort: number;
  readonly adminUrl: string;
}

export interface LabLayout {
  readonly base: number;
  readonly control: { readonly port: number; readonly url: string };
  /** The lab's live page, served by the supervisor when `up` is asked for it. */
  readonly live: { readonly port: number; readonly url: string };
  readonly gateways: Readonly<Record<Strategy, InstancePlan>>;
  readonly backends: Readonly<Record<BackendName, readonly InstancePlan[]>>;
  /** Every instance: backends first, then gateways. */
  readonly instances: readonly InstancePlan[];
  /** One fault proxy per backend instance, in the order of `instances`. */
  readonly proxies: readonly ProxyPlan[];
}

function urlOf(port: number): string {
  return `http://${LOOPBACK}:${port}`;
}

export function isValidPortBase(base: number): boolean {
  return Number.isInteger(base) && base >= PORT_BASE_RANGE.min && base <= PORT_BASE_RANGE.max;
}

export function labLayout(base: number = DEFAULT_PORT_BASE): LabLayout {
  if (!isValidPortBase(base)) {
    throw new RangeError(
      `port base ${base} is out of range: expected an integer from ${PORT_BASE_RANGE.min} to ${PORT_BASE_RANGE.max}`,
    );
  }
  const backends = Object.fromEntries(
    BACKENDS.map((name, k) => {
      const replicas = topology.backends[name].replicas;
      if (replicas > MAX_REPLICAS) {
        throw new RangeError(`${name} has ${replicas} replicas; the local lab has room for ${MAX_REPLICAS}`);
      }
      const plans = Array.from({ length: replicas }, (_, i): InstancePlan => {
        const port = base + BACKEND_OFFSET + BACKEND_BLOCK * k + i;
        return { id: `${name}-${i + 1}`, service: name, port, url: urlOf(port) };
      });
      return [name, plans];
    }),
  ) as Record<BackendName, InstancePlan[]>;
  const gateways = Object.fromEntries(
    STRATEGIES.map((strategy, j) => {
      const port = base + GATEWAY_OFFSET + j;
      const plan: InstancePlan = {
        id: `${GATEWAY_SERVICE}-${strategy}`,
        service: GATEWAY_SERVICE,
        port,
        url: urlOf(port),
        strategy,
      };
      return [strategy, plan];
    }),
  ) as Record<Strategy, InstancePlan>;
  const controlPort = base + CONTROL_OFFSET;
  const livePort = base + LIVE_LAB_OFFSET;
  const proxies = BACKENDS.flatMap((name) =>
    backends[name].map((plan): ProxyPlan => {
      // The instance's own offset within the backends' hundred, moved to the proxies' hundreds.
      const slot = plan.port - base - BACKEND_OFFSET;
      const dataPort = base + PROXY_DATA_OFFSET + slot;
      const adminPort = base + PROXY_ADMIN_OFFSET + slot;
      return {
        id: `${plan.id}-proxy`,
        instance: plan.id,
        service: name,
        dataPort,
        dataUrl: urlOf(dataPort),
        adminPort,
        adminUrl: urlOf(adminPort),
      };
    }),
  );
  return {
    base,
    control: { port: controlPort, url: urlOf(controlPort) },
    live: { port: livePort, url: `${urlOf(livePort)}/` },
    gateways,
    backends,
    instances: [...BACKENDS.flatMap((name) => backends[name]), ...STRATEGIES.map((s) => gateways[s])],
    proxies,
  };
}

/** Every port the lab binds, with what it is for (for the free-port check and its message). */
export function portsOf(layout: LabLayout): { port: number; owner: string }[] {
  return [
    { port: layout.control.port, owner: 'control API' },
    ...layout.instances.map((i) => ({ port: i.port, owner: i.id })),
    ...layout.proxies.flatMap((p) => [
      { port: p.dataPort, owner: p.id },
      { port: p.adminPort, owner: `${p.id} admin` },
    ]),
    { port: layout.live.port, owner: 'live page' },
  ];
}
