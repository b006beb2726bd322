/**
 * The live page's flags on the command line, down to the options the commands receive (the commands
 * themselves are replaced by recorders: what they do is tested where they live).
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../cli.ts';
import { runCommand } from '../commands/run.ts';
import type { Io } from '../io.ts';
import { DEFAULT_RUN_LIVE_PORT } from '../local/layout.ts';
import { upDetachedCommand, upForegroundCommand } from '../local/up.ts';

vi.mock('../commands/run.ts', async (original) => ({
  ...(await original<typeof import('../commands/run.ts')>()),
  runCommand: vi.fn(async () => 0),
}));
vi.mock('../local/up.ts', async (original) => ({
  ...(await original<typeof import('../local/up.ts')>()),
  upForegroundCommand: vi.fn(async () => 0),
  upDetachedCommand: vi.fn(async () => 0),
}));

async function cli(...argv: string[]) {
  let stderr = '';
  const io: Io = {
    stdout: () => {},
    stderr: (t) => {
      stderr += t;
    },
    env: { CHAOS_LAB_HOME: '/nonexistent-live-flags' },
  };
  return { code: await main(argv, io), stderr };
}

beforeEach(() => vi.clearAllMocks());

describe('the live page flags', () => {
  it('run serves the page on the default port unless told another port or --no-live', async () => {
    await cli('run', 'tour');
    expect(vi.mocked(runCommand).mock.calls[0]?.[2]).toMatchObject({ live: { port: DEFAULT_RUN_LIVE_PORT } });
    await cli('run', 'tour', '--live-port', '19999');
    expect(vi.mocked(runCommand).mock.calls[1]?.[2]).toMatchObject({ live: { port: 19_999 } });
    await cli('run', 'tour', '--no-live');
    expect(vi.mocked(runCommand).mock.calls[2]?.[2]).not.toHaveProperty('live');
  });

  it('run refuses a live port it cannot use, saying what would do (exit 2)', async () => {
    const result = await cli('run', 'tour', '--live-port', '80');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      "option '--live-port <n>' argument '80' is invalid. expected a port from 1024 to 65535, e.g. --live-port 18092.",
    );
    expect(runCommand).not.toHaveBeenCalled();
  });

  it('up serves the lab page unless --no-live, in the foreground and detached alike', async () => {
    await cli('up');
    expect(vi.mocked(upForegroundCommand).mock.calls[0]?.[1]).toMatchObject({ live: true });
    await cli('up', '--detach', '--no-live');
    expect(vi.mocked(upDetachedCommand).mock.calls[0]?.[1]).toMatchObject({ live: false });
  });
});
