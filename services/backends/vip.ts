import express, { type Request } from 'express';
import { errors } from '../lib/errors.ts';
import { findVip } from './dataset.ts';
import { parseId } from './ids.ts';
import type { RouteDeps } from './routes.ts';

/** VIP membership of an account. Every look-up is audited in the background. */
export function vipRoutes({ go }: RouteDeps): express.Router {
  const router = express.Router();
  // Bounded by the data set: one entry per known account at most.
  const accessCount = new Map<number, number>();

  router.get('/vips/:mid', (req: Request<{ mid: string }>, res) => {
    const mid = parseId(req.params.mid, 'mid');
    const vip = findVip(mid);
    if (!vip) throw errors.notFound('ACCOUNT_NOT_FOUND', `no account with mid ${mid}`);
    go('audit-access', () => {
      accessCount.set(mid, (accessCount.get(mid) ?? 0) + 1);
    });
    res.json(vip);
  });
  return router;
}
