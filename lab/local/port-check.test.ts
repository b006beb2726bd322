import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { preflight } from './lab.ts';
import { labLayout, portsOf } from './layout.ts';
import { ephemeralRange, ephemeralWarning } from './port-check.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'port-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ports inside the kernel ephemeral range', () => {
  it('reads the range the kernel reports, and the usual one where there is none', () => {
    const file = path.join(dir, 'ip_local_port_range');
    writeFileSync(file, '40000\t50000\n');
    expect(ephemeralRange(file)).toEqual({ first: 40_000, last: 50_000 });
    expect(ephemeralRange(path.join(dir, 'none'))).toEqual({ first: 32_768, last: 60_999 });
  });

  it('names the lab ports inside the range, and the range; nothing for a lab below it', () => {
    const range = { first: 32_768, last: 60_999 };
    expect(ephemeralWarning(portsOf(labLayout(18_000)), range)).toBeUndefined();
    expect(ephemeralWarning(portsOf(labLayout(42_000)), range)).toMatch(
      /^ports 42080-42\d{3} are inside the kernel's ephemeral range 32768-60999 \(\/proc\/sys\/net\/ipv4\/ip_local_port_range\)/,
    );
    // A lab straddling the range's start: only the ports inside it are named.
    expect(ephemeralWarning(portsOf(labLayout(32_700)), range)).toMatch(/^ports 32780-/);
  });

  it('is said before a lab starts at such a port base, with the range this kernel reports', async () => {
    const said: string[] = [];
    const { first } = ephemeralRange();
    // Said before the ports are tried: one of them may well be taken, by an outgoing connection of
    // the tests running beside this one, which is the very reason for the warning.
    await preflight({ home: path.join(dir, 'home'), portBase: first + 1_000 }, (line) =>
      said.push(line),
    ).catch((err: Error) => expect(err.message).toMatch(/already in use/));
    expect(said).toEqual([expect.stringMatching(new RegExp(`^warning: ports .* ephemeral range ${first}-`))]);
  });
});
