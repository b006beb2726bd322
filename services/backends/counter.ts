import express, { type Request } from 'express';
import { errors } from '../lib/errors.ts';
import { findVideo, type Video } from './dataset.ts';
import { parseId } from './ids.ts';
import type { RouteDeps } from './routes.ts';

/** Chance that a refresh finds one more like/coin than last time: the counters drift up slowly. */
export const COUNTER_GROWTH = 0.2;

/**
 * A per-video counter (likes, coins): answers the current value and refreshes it in the
 * background, the way a counter service re-reads a hot key after serving it.
 */
export function counterRoutes(
  { go, random }: RouteDeps,
  counter: { readonly field: 'likes' | 'coins' },
): express.Router {
  const router = express.Router();
  // Per instance; bounded by the data set.
  const values = new Map<number, number>();
  const current = (video: Video) => values.get(video.aid) ?? video[counter.field];

  router.get(`/${counter.field}/:aid`, (req: Request<{ aid: string }>, res) => {
    const aid = parseId(req.params.aid, 'aid');
    const video = findVideo(aid);
    if (!video) throw errors.notFound('VIDEO_NOT_FOUND', `no video with aid ${aid}`);
    const value = current(video);
    go('refresh-counter', () => {
      values.set(aid, current(video) + (random() < COUNTER_GROWTH ? 1 : 0));
    });
    res.json({ aid, [counter.field]: value });
  });
  return router;
}
