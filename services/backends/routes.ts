import type { Router } from 'express';
import type { Launcher } from '../lib/go.ts';
import type { ServiceContext } from '../lib/service-app.ts';

/** What a backend's routes get from the server: nothing global, so tests can run many. */
export interface RouteDeps {
  readonly ctx: ServiceContext;
  /** Launches the request's background task. */
  readonly go: Launcher['go'];
  readonly clock: () => number;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

export type RouteFactory = (deps: RouteDeps) => Router;
