import express, { type Request } from 'express';
import { errors } from '../lib/errors.ts';
import { findVideo } from './dataset.ts';
import { parseId } from './ids.ts';
import type { RouteDeps } from './routes.ts';

/** Videos: title, duration, uploader. Each view is recorded in the background. */
export function archiveRoutes({ go }: RouteDeps): express.Router {
  const router = express.Router();
  // Per instance, as two replicas without a shared store would count; bounded by the data set.
  const views = new Map<number, number>();

  router.get('/archives/:aid', (req: Request<{ aid: string }>, res) => {
    const aid = parseId(req.params.aid, 'aid');
    const video = findVideo(aid);
    if (!video) throw errors.notFound('VIDEO_NOT_FOUND', `no video with aid ${aid}`);
    const { likes: _likes, coins: _coins, ...archive } = video;
    const seen = views.get(aid) ?? video.views;
    go('record-view', () => {
      views.set(aid, (views.get(aid) ?? video.views) + 1);
    });
    res.json({ ...archive, views: seen });
  });
  return router;
}
