import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Io } from '../io.ts';
import { startRunLive } from './run-live.ts';

function recordingIo() {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {} };
  return { io, out, err };
}

function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

describe("a run's live page", () => {
  it('prints its address, and serves the run as its events arrive', async () => {
    const { io, out } = recordingIo();
    const live = await startRunLive(io, { port: 0, resultsDir: 'results' });
    try {
      expect(live).toBeDefined();
      expect(out).toEqual([`live: ${live!.url}\n`]);
      live!.sink.event({
        type: 'run-started',
        runId: 'r1',
        experiment: { name: 'demo', file: 'demo.yaml' },
        target: 'local',
        variants: ['default'],
        phases: [{ name: 'baseline', durationMs: 1_000 }],
        gateways: ['naive'],
        rate: 5,
      });
      const state = (await (await fetch(`${live!.url}state.json`)).json()) as { title: string };
      expect(state.title).toBe('demo');
    } finally {
      await live?.close();
    }
  });

  it('moves to a free port when its port is taken, and says so', async () => {
    const busy = await occupy();
    const { io, out } = recordingIo();
    const live = await startRunLive(io, { port: busy.port, resultsDir: 'results' });
    try {
      expect(live?.url).not.toContain(`:${busy.port}/`);
      expect(out).toEqual([`live: ${live!.url} (port ${busy.port} is taken; --live-port chooses another)\n`]);
    } finally {
      await live?.close();
      busy.server.close();
    }
  });

  it('does not stop the run when the page cannot be served at all: a warning, no page', async () => {
    const { io, out, err } = recordingIo();
    // No such port: listening fails at once, and not because it is taken (no other port is tried).
    const live = await startRunLive(io, { port: 70_000, resultsDir: 'results' });
    expect(live).toBeUndefined();
    expect(out).toEqual([]);
    expect(err.join('')).toMatch(
      /^chaos-lab: the live page cannot be served \(.*\); the run goes on without it\n$/,
    );
  });
});
