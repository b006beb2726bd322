/**
 * The one source of truth for the lab's shape: which backends exist, how the gateway
 * depends on them, which port each listens on, and how many replicas run. The services,
 * the local target, the cdk8s charts and the dashboards all read this file; nothing else
 * spells a service name or a port.
 */

export const BACKENDS = ['account', 'archive', 'vip', 'like', 'coin'] as const;
export type BackendName = (typeof BACKENDS)[number];

export const STRATEGIES = ['naive', 'parallel', 'resilient'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/**
 * strong: the page cannot be rendered without it (the gateway fails the request);
 * weak: the page degrades without it (the gateway marks it in `degraded`).
 */
export type Dependency = 'strong' | 'weak';

export interface BackendSpec {
  readonly name: BackendName;
  /** What the service owns, for docs and dashboards. */
  readonly description: string;
  /** How the gateway depends on it. */
  readonly dependency: Dependency;
  /** Port the service listens on inside its container (Kubernetes) and its default `PORT`. */
  readonly port: number;
  /** Instances run by every target. */
  readonly replicas: number;
  /**
   * The resilient gateway's deadline for one call to this service, carved from the caller's
   * budget. Weak dependencies get a short one: the page is worth more than a like count.
   */
  readonly deadlineMs: number;
  /** How long the resilient gateway's cache treats an answer as fresh. */
  readonly cacheTtlMs: number;
}

export interface GatewaySpec {
  /** Port every gateway listens on inside its container and its default `PORT`. */
  readonly port: number;
  readonly strategies: readonly Strategy[];
  /** Budget for one page when the caller sends no `x-request-timeout`. */
  readonly defaultBudgetMs: number;
}

export const topology = {
  backends: {
    account: {
      name: 'account',
      description: 'user accounts: name, avatar, level',
      dependency: 'strong',
      port: 8081,
      replicas: 2,
      deadlineMs: 300,
      cacheTtlMs: 10_000,
    },
    archive: {
      name: 'archive',
      description: 'videos: title, duration, uploader; records views',
      dependency: 'strong',
      port: 8082,
      replicas: 2,
      deadlineMs: 300,
      cacheTtlMs: 10_000,
    },
    vip: {
      name: 'vip',
      description: 'VIP membership of an account',
      dependency: 'weak',
      port: 8083,
      replicas: 2,
      deadlineMs: 100,
      cacheTtlMs: 5_000,
    },
    like: {
      name: 'like',
      description: 'like count of a video',
      dependency: 'weak',
      port: 8084,
      replicas: 2,
      deadlineMs: 100,
      cacheTtlMs: 1_000,
    },
    coin: {
      name: 'coin',
      description: 'coin count of a video',
      dependency: 'weak',
      port: 8085,
      replicas: 2,
      deadlineMs: 100,
      cacheTtlMs: 1_000,
    },
  },
  gateway: {
    port: 8080,
    strategies: STRATEGIES,
    defaultBudgetMs: 800,
  },
} as const satisfies {
  backends: { readonly [K in BackendName]: BackendSpec & { readonly name: K } };
  gateway: GatewaySpec;
};

export function backend(name: BackendName): BackendSpec {
  return topology.backends[name];
}

export function isBackendName(value: string): value is BackendName {
  return (BACKENDS as readonly string[]).includes(value);
}

export function isStrategy(value: string): value is Strategy {
  return (STRATEGIES as readonly string[]).includes(value);
}

export const STRONG_BACKENDS: readonly BackendName[] = BACKENDS.filter(
  (b) => backend(b).dependency === 'strong',
);
export const WEAK_BACKENDS: readonly BackendName[] = BACKENDS.filter((b) => backend(b).dependency === 'weak');

/** Deterministic data set sizes, shared by the backends and the load generators. */
export const DATASET = {
  seed: 20_190_601,
  accounts: 400,
  videos: 1_200,
  /** Video ids (aid) are 1..videos; account ids (mid) are 1..accounts. */
  firstAid: 1,
  firstMid: 1,
} as const;
