import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labDriver, TARGET_NAMES } from './lab-driver.ts';

const home = mkdtempSync(path.join(tmpdir(), 'chaos-lab-driver-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('the lab drivers', () => {
  it('has one per --target, local first (the default)', () => {
    expect(TARGET_NAMES).toEqual(['local', 'kind']);
  });

  it.each(TARGET_NAMES)(
    '%s: gives the runner its target without starting or touching anything',
    async (name) => {
      const driver = await labDriver(name);
      const target = await driver.target({ home });
      expect(target.name).toBe(name);
    },
  );
});
