/**
 * `chaos-lab run` and `list` as real processes, where no lab is needed: a bad experiment file is refused
 * with exit 2 and a message that says where and what would be right, before anything is created or
 * started (no results folder, no lab state in CHAOS_LAB_HOME).
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, makeHome, removeHome } from './helpers.ts';

let home: string;
beforeAll(() => {
  home = makeHome();
});
afterAll(() => removeHome(home));

const HEAD = 'description: x\nload: { rate: 10, endpoint: video }\n';
const CASES = [
  {
    what: 'malformed YAML',
    text: `name: malformed\n${HEAD}phases: [{ name: a, duration: 5s }\n`,
    message: /malformed\.yaml:\d+:\d+: YAML: .*\]/,
  },
  {
    what: 'an unknown fault kind',
    text: `name: kind\n${HEAD}phases:\n  - name: fault\n    duration: 5s\n    faults: [{ kind: latencyy, service: coin, delay: 100ms }]\n`,
    message:
      'kind.yaml:7:22: phases[0].faults[0].kind: got "latencyy"; expected a fault kind: one of latency, loss, http-error, worker-panic, kill',
  },
  {
    what: 'loss of 150%',
    text: `name: loss\n${HEAD}phases:\n  - name: fault\n    duration: 5s\n    faults: [{ kind: loss, service: coin, percent: 150 }]\n`,
    message: 'loss.yaml:7:52: phases[0].faults[0].percent: got 150; expected a percentage from 0 to 100',
  },
  {
    what: 'missing phases',
    text: `name: phases\n${HEAD}`,
    message: 'phases.yaml:1:1: phases: missing; expected a list of phases',
  },
  {
    what: 'an unknown service',
    text: `name: service\n${HEAD}phases:\n  - name: fault\n    duration: 5s\n    faults: [{ kind: latency, service: coins, delay: 100ms }]\n`,
    message:
      'service.yaml:7:40: phases[0].faults[0].service: got "coins"; expected one of account, archive, vip, like, coin',
  },
];

describe('chaos-lab run with invalid input', () => {
  it.each(CASES)('refuses $what: exit 2, a precise message, nothing created or started', async (c) => {
    const name = (c.text.match(/^name: (\S+)/) as RegExpMatchArray)[1] as string;
    const file = path.join(home, `${name}.yaml`);
    writeFileSync(file, c.text);
    const out = path.join(home, 'results');

    const run = await cli(home, ['run', file, '--out', out]);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^chaos-lab: invalid experiment .*\.yaml \(\d+ problems?\):\n/);
    if (typeof c.message === 'string') expect(run.stderr).toContain(c.message);
    else expect(run.stderr).toMatch(c.message);
    expect(run.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    // Only the experiment files: no state.json, no logs, no supervisor.
    expect(readdirSync(home).filter((f) => !f.endsWith('.yaml'))).toEqual([]);
  });

  it('lists the catalog when the name is unknown (exit 2)', async () => {
    const run = await cli(home, ['run', 'weak-dependency-latancy']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('chaos-lab: no experiment named "weak-dependency-latancy" and no such file');
    expect(run.stderr).toContain('weak-dependency-latency');
    expect(readdirSync(home).filter((f) => !f.endsWith('.yaml'))).toEqual([]);
  });
});

describe('chaos-lab list', () => {
  it('prints every experiment of the catalog with its length and description', async () => {
    const run = await cli(home, ['list']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^NAME +LENGTH +DESCRIPTION\n/);
    expect(run.stdout).toMatch(/\ntour +[\d.]+m +\S/);
    expect(run.stdout).toMatch(/\nweak-dependency-latency +\d+s +\S/);
    expect(run.stdout).not.toContain('schema');
  });
});
