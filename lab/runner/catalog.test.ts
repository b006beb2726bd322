import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  catalogNames,
  loadCatalog,
  resolveExperiment,
  totalDurationMs,
  UnknownExperimentError,
} from './catalog.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'chaos-catalog-'));
  writeFileSync(
    path.join(dir, 'calm.yaml'),
    'name: calm\ndescription: nothing happens\nload: { rate: 5, endpoint: video }\nvariants: [{ name: a, settings: {} }, { name: b, settings: {} }]\nphases: [{ name: only, duration: 4s }]\n',
  );
  writeFileSync(path.join(dir, 'broken.yml'), 'name: broken\nphases: []\n');
  writeFileSync(path.join(dir, 'schema.json'), '{}');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the catalog', () => {
  it('finds experiments by name, files by path, and lists the names when neither matches', () => {
    expect(catalogNames(dir)).toEqual(['broken', 'calm']);
    expect(resolveExperiment('calm', { dir, cwd: dir })).toBe('calm.yaml');
    expect(resolveExperiment('calm', { dir, cwd: path.join(dir, 'elsewhere') })).toBe(
      path.join(dir, 'calm.yaml'),
    );
    expect(resolveExperiment(path.join(dir, 'broken.yml'), { dir, cwd: tmpdir() })).toBe(
      path.join(path.basename(dir), 'broken.yml'),
    );
    // A path that does not exist is the loader's to report (it names the file).
    expect(resolveExperiment('./missing.yaml', { dir })).toBe('./missing.yaml');
    const error = (() => {
      try {
        resolveExperiment('clam', { dir });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UnknownExperimentError);
    expect((error as Error).message).toBe(
      'no experiment named "clam" and no such file; expected a file path or one of: broken, calm',
    );
  });

  it('loads every file, keeping a broken one with its problems, and sums the length of a run', async () => {
    const entries = await loadCatalog(dir);
    expect(entries.map((e) => [path.basename(e.file), 'error' in e])).toEqual([
      ['broken.yml', true],
      ['calm.yaml', false],
    ]);
    const calm = entries[1];
    if (!calm || !('experiment' in calm)) throw new Error('calm did not load');
    expect(totalDurationMs(calm.experiment, 1_000)).toBe(10_000);
  });

  it('the shipped catalog validates (what `chaos-lab list` and `npm start` rely on)', async () => {
    const entries = await loadCatalog();
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.filter((e) => 'error' in e).map((e) => ('error' in e ? e.error.message : ''))).toEqual([]);
  });
});
