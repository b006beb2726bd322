import { z } from 'zod';
import type { BackendName } from '../topology.ts';

/**
 * What the gateway expects from each backend: the path of the one resource it reads and the
 * shape of the answer. Checking the shape turns a backend that changed under us into a clear
 * dependency failure instead of a page with holes in it.
 */
const archive = z.object({
  aid: z.number().int(),
  bvid: z.string(),
  title: z.string(),
  description: z.string(),
  duration: z.number(),
  ownerMid: z.number().int(),
  pubdate: z.string(),
  category: z.string(),
  cover: z.string(),
  views: z.number(),
});

const account = z.object({
  mid: z.number().int(),
  name: z.string(),
  face: z.string(),
  level: z.number().int(),
});

const vip = z.object({
  mid: z.number().int(),
  type: z.enum(['none', 'monthly', 'annual']),
  active: z.boolean(),
  dueDate: z.string().nullable(),
});

const like = z.object({ aid: z.number().int(), likes: z.number() });
const coin = z.object({ aid: z.number().int(), coins: z.number() });

export const BACKEND_API = {
  archive: { path: (aid: number) => `/archives/${aid}`, schema: archive },
  account: { path: (mid: number) => `/accounts/${mid}`, schema: account },
  vip: { path: (mid: number) => `/vips/${mid}`, schema: vip },
  like: { path: (aid: number) => `/likes/${aid}`, schema: like },
  coin: { path: (aid: number) => `/coins/${aid}`, schema: coin },
} as const satisfies Record<BackendName, { path: (id: number) => string; schema: z.ZodType }>;

/** The parsed answer of each backend. */
export type BackendBody = { [D in BackendName]: z.infer<(typeof BACKEND_API)[D]['schema']> };
