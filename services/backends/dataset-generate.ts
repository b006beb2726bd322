/**
 * The lab's data made from DATASET.seed with faker: the same on every instance and every run.
 * The local lab's build (lab/build/lab-build.ts) runs this once and puts its result in the
 * bundle, so that a backend starts without faker (a third of its start-up CPU, and memory).
 */

import { base, en, Faker } from '@faker-js/faker';
import { DATASET } from '../topology.ts';
import { aidToBvid } from './bvid.ts';
import { type Account, CATEGORIES, type Video, type Vip } from './dataset.ts';

const TITLE_TAGS = [
  '4K',
  '1080P60',
  'Tutorial',
  'Live',
  'Cover',
  'Vlog',
  'Review',
  'MAD',
  'Speedrun',
  'Original',
];
const EPOCH = { from: '2015-01-01T00:00:00.000Z', to: '2024-12-31T23:59:59.000Z' } as const;

/** One generator per collection, so adding a field to videos does not reshuffle accounts. */
function seeded(stream: number): Faker {
  const faker = new Faker({ locale: [en, base] });
  faker.seed([DATASET.seed, stream]);
  return faker;
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** An image on Bilibili's CDN, the way covers and avatars are addressed. */
function cdnImage(faker: Faker, bucket: 'face' | 'archive'): string {
  return `https://i0.hdslb.com/bfs/${bucket}/${faker.string.hexadecimal({ length: 40, casing: 'lower', prefix: '' })}.jpg`;
}

function generateAccounts(count: number): Account[] {
  const faker = seeded(1);
  return Array.from({ length: count }, (_, i) => ({
    mid: DATASET.firstMid + i,
    name: faker.internet.username(),
    face: cdnImage(faker, 'face'),
    sign: faker.person.bio(),
    level: faker.helpers.weightedArrayElement([
      { weight: 2, value: 0 },
      { weight: 5, value: 1 },
      { weight: 10, value: 2 },
      { weight: 18, value: 3 },
      { weight: 25, value: 4 },
      { weight: 25, value: 5 },
      { weight: 15, value: 6 },
    ]),
  }));
}

function generateVips(count: number): Vip[] {
  const faker = seeded(2);
  return Array.from({ length: count }, (_, i): Vip => {
    const mid = DATASET.firstMid + i;
    const type = faker.helpers.weightedArrayElement([
      { weight: 60, value: 'none' as const },
      { weight: 25, value: 'monthly' as const },
      { weight: 15, value: 'annual' as const },
    ]);
    if (type === 'none') return { mid, type, active: false, dueDate: null };
    // Fixed windows rather than "now": the data must not change with the day it is served.
    const active = faker.datatype.boolean({ probability: 0.8 });
    const due = active
      ? faker.date.between({ from: '2026-01-01T00:00:00.000Z', to: '2028-12-31T00:00:00.000Z' })
      : faker.date.between({ from: '2020-01-01T00:00:00.000Z', to: '2024-12-31T00:00:00.000Z' });
    return { mid, type, active, dueDate: due.toISOString().slice(0, 10) };
  });
}

function generateVideos(count: number, accounts: number): Video[] {
  const faker = seeded(3);
  return Array.from({ length: count }, (_, i): Video => {
    const aid = DATASET.firstAid + i;
    const category = faker.helpers.arrayElement(CATEGORIES);
    const words = capitalized(faker.word.words({ count: { min: 3, max: 7 } }));
    const title = faker.datatype.boolean({ probability: 0.3 })
      ? `【${faker.helpers.arrayElement(TITLE_TAGS)}】${words}`
      : words;
    // Most videos are short; a few are long streams or films.
    const duration = faker.helpers.weightedArrayElement([
      { weight: 70, value: [30, 900] as const },
      { weight: 25, value: [900, 3_600] as const },
      { weight: 5, value: [3_600, 7_200] as const },
    ]);
    // A few uploaders own most videos, as on any video site.
    const ownerMid = DATASET.firstMid + Math.floor(accounts * faker.number.float({ min: 0, max: 1 }) ** 2);
    const views = Math.floor(10 ** faker.number.float({ min: 2, max: 7 }));
    return {
      aid,
      bvid: aidToBvid(aid),
      title,
      description: `${capitalized(faker.word.words({ count: { min: 8, max: 24 } }))}. #${category} #${faker.word.noun()}`,
      duration: faker.number.int({ min: duration[0], max: duration[1] }),
      ownerMid: Math.min(ownerMid, DATASET.firstMid + accounts - 1),
      pubdate: faker.date.between(EPOCH).toISOString(),
      category,
      cover: cdnImage(faker, 'archive'),
      views,
      likes: Math.floor(views * faker.number.float({ min: 0.02, max: 0.1 })),
      coins: Math.floor(views * faker.number.float({ min: 0.005, max: 0.04 })),
    };
  });
}

/** Every collection, fresh: accounts[mid - 1], vips[mid - 1], videos[aid - 1]. */
export function generateDataset(): { accounts: Account[]; vips: Vip[]; videos: Video[] } {
  return {
    accounts: generateAccounts(DATASET.accounts),
    vips: generateVips(DATASET.accounts),
    videos: generateVideos(DATASET.videos, DATASET.accounts),
  };
}
