/**
 * Bilibili's public video ids (`BV1xx411c7mD`) from the numeric archive id (aid), with the
 * algorithm Bilibili used from 2020 until 2024: a reversible XOR-and-base-58 scramble, so the
 * lab's ids look and decode exactly like the real ones (av2 ⇄ BV1xx411c7mD).
 */

const ALPHABET = 'fZodR9XQDSUm21yCkr6zBqiveYah8bt4xsWpHnJE7jL5VG3guMTKNPAwcF';
const SLOTS = [11, 10, 3, 8, 4, 6] as const;
const XOR = 177_451_812;
const ADD = 8_728_348_608;
const TEMPLATE = 'BV1  4 1 7  ';
/** Above this the old scheme overflows its six base-58 digits. */
export const MAX_AID = 2 ** 29;

export function aidToBvid(aid: number): string {
  if (!Number.isInteger(aid) || aid < 1 || aid >= MAX_AID) {
    throw new RangeError(`aid must be an integer from 1 to ${MAX_AID - 1}, got ${aid}`);
  }
  const x = (aid ^ XOR) + ADD;
  const chars = TEMPLATE.split('');
  SLOTS.forEach((slot, i) => {
    chars[slot] = ALPHABET[Math.floor(x / 58 ** i) % 58]!;
  });
  return chars.join('');
}

/** The aid a bvid stands for, or undefined when it is not one. */
export function bvidToAid(bvid: string): number | undefined {
  if (!/^BV1[1-9A-HJ-NP-Za-km-z]{9}$/.test(bvid)) return undefined;
  let x = 0;
  for (const [i, slot] of SLOTS.entries()) {
    const digit = ALPHABET.indexOf(bvid[slot]!);
    if (digit < 0) return undefined;
    x += digit * 58 ** i;
  }
  const aid = (x - ADD) ^ XOR;
  return aid >= 1 && aid < MAX_AID && aidToBvid(aid) === bvid ? aid : undefined;
}
