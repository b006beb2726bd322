import type express from 'express';
import { counterRoutes } from './counter.ts';
import type { RouteDeps } from './routes.ts';

/** Coin count of a video (Bilibili's tip: a viewer throws a coin or two at a video). */
export function coinRoutes(deps: RouteDeps): express.Router {
  return counterRoutes(deps, { field: 'coins' });
}
