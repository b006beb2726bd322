export { seededRandom } from '../../lib/random.ts';

/** A random source that answers `rolls` in order, then `rest`. */
export function scriptedRandom(rolls: number[], rest = 0.5): () => number {
  return () => rolls.shift() ?? rest;
}
