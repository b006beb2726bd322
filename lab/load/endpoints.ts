/**
 * What a load request asks the gateway for. An experiment names an endpoint (`load.endpoint`); this maps
 * it to the request path, drawing ids from the data set every backend generates.
 */
import { DATASET } from '../../services/topology.ts';

export type PathFn = (random: () => number) => string;

export const ENDPOINT_PATHS = {
  /** The video page: archive + uploader account + VIP + likes + coins, for a uniformly random video. */
  video: (random) => `/api/video/${DATASET.firstAid + Math.floor(random() * DATASET.videos)}`,
} as const satisfies Record<string, PathFn>;

export type EndpointName = keyof typeof ENDPOINT_PATHS;
