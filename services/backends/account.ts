import express, { type Request } from 'express';
import { errors } from '../lib/errors.ts';
import { findAccount } from './dataset.ts';
import { parseId } from './ids.ts';
import type { RouteDeps } from './routes.ts';

/** Accounts: name, avatar, level. Remembers when each account was last looked at. */
export function accountRoutes({ go, clock }: RouteDeps): express.Router {
  const router = express.Router();
  // Bounded by the data set: one entry per known account at most.
  const lastSeen = new Map<number, number>();

  router.get('/accounts/:mid', (req: Request<{ mid: string }>, res) => {
    const mid = parseId(req.params.mid, 'mid');
    const account = findAccount(mid);
    if (!account) throw errors.notFound('ACCOUNT_NOT_FOUND', `no account with mid ${mid}`);
    go('touch-last-seen', () => {
      lastSeen.set(mid, clock());
    });
    res.json(account);
  });
  return router;
}
