import type express from 'express';
import { counterRoutes } from './counter.ts';
import type { RouteDeps } from './routes.ts';

/** Like count of a video. */
export function likeRoutes(deps: RouteDeps): express.Router {
  return counterRoutes(deps, { field: 'likes' });
}
