/**
 * `chaos-lab run` and `list` as real processes, where no lab is needed: a bad experiment file is refused
 * with exit 2 and a message that says where and what would be right, before anything is created or
 * started (no results folder, no lab state in CHAOS_LAB_HOME).
 */
import { existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
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

describe('chaos-lab run with an --out where no folder can be written', () => {
  // Node's recursive mkdir spun forever under /proc (and below a link to nothing), out of Ctrl-C's
  // reach: bounded here, so that a hang fails the test instead of holding it.
  const BOUND_MS = 20_000;
  // The kernel's /proc and /sys are Linux's; elsewhere those paths are just folders root owns.
  const kernelFolders: [string, () => string, RegExp][] =
    process.platform === 'linux'
      ? [
          ['/proc/x', () => '/proc/x', /\(no folder can be made in \/proc: E[A-Z]+\)$/m],
          ['/proc/self/x', () => '/proc/self/x', /\(no folder can be made in \/proc\/self: E[A-Z]+\)$/m],
          ['/proc/1/foo', () => '/proc/1/foo', /\(no folder can be made in \/proc\/1: E[A-Z]+\)$/m],
          ['/sys/x', () => '/sys/x', /\(no folder can be made in \/sys: E[A-Z]+\)$/m],
        ]
      : [];
  const OUTS: [string, () => string, RegExp][] = [
    ...kernelFolders,
    [
      'a folder below a link to nothing',
      () => {
        const link = path.join(home, 'dangling');
        if (!existsSync(path.join(home, 'dangling'))) symlinkSync(path.join(home, 'nowhere'), link);
        return path.join(link, 'out');
      },
      /\(\S+\/dangling is a link to nothing\)$/m,
    ],
  ];

  it.each(OUTS)(
    'refuses %s at once: exit 2, one line and a hint, nothing started',
    async (_what, out, why) => {
      const dir = out();
      const started = Date.now();
      const run = await cli(
        home,
        ['run', 'experiments/tour.yaml', '--out', dir, '--no-live'],
        BOUND_MS,
        'SIGKILL',
      );
      expect(Date.now() - started).toBeLessThan(BOUND_MS);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`chaos-lab: --out ${dir}: cannot write run folders in ${dir} (`);
      expect(run.stderr).toMatch(why);
      expect(run.stderr).toMatch(/\nhint: choose a folder you can write/);
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.stdout).toBe('');
      // No state, no logs, no supervisor: only what the tests put there.
      expect(readdirSync(home).filter((f) => !f.endsWith('.yaml') && f !== 'dangling')).toEqual([]);
    },
  );
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
