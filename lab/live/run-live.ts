/**
 * The live page of one `chaos-lab run`, in the runner's own process: its feed hangs beside the terminal's
 * progress display, and it is served until the command ends. The page is a courtesy: a port that is taken
 * moves it to a free one, and a page that cannot be served at all is said once, never a reason to fail
 * the run.
 */
import { type Io, say, warn } from '../io.ts';
import type { RunEvent } from '../runner/journal.ts';
import type { ProgressSink } from '../runner/run.ts';
import { createRunFeed } from './run-feed.ts';
import { startLiveServer } from './server.ts';

export interface RunLive {
  /** Every event and note of the run goes here too. */
  readonly sink: ProgressSink;
  readonly url: string;
  /** Stops serving the page; idempotent. */
  close(): Promise<void>;
}

export interface RunLiveOptions {
  /** Tried first; when taken, a free port is used instead. */
  readonly port: number;
  /** Where run folders are created, as the user should read it: the page names the report. */
  readonly resultsDir: string;
  /** Which load driver measures: the page says from when its latencies run. @default builtin */
  readonly driver?: 'builtin' | 'k6';
}

/** Serves the run's page and prints `live: <url>`; undefined (and a warning) when it cannot be served. */
export async function startRunLive(io: Io, options: RunLiveOptions): Promise<RunLive | undefined> {
  const feed = createRunFeed({
    resultsDir: options.resultsDir,
    ...(options.driver ? { driver: options.driver } : {}),
  });
  try {
    const server = await startLiveServer({ model: feed.model, port: options.port, fallback: true });
    say(
      io,
      server.fellBack
        ? `live: ${server.url} (port ${options.port} is taken; --live-port chooses another)`
        : `live: ${server.url}`,
    );
    return { sink: feed.sink, url: server.url, close: () => server.close() };
  } catch (err) {
    warn(
      io,
      `chaos-lab: the live page cannot be served (${(err as Error).message}); the run goes on without it`,
    );
    return undefined;
  }
}

/**
 * The terminal's display with the page's feed beside it: every event and note reaches both, and a page
 * that throws cannot disturb the terminal (nor the run).
 */
export function withLiveFeed<T extends ProgressSink>(primary: T, live: ProgressSink | undefined): T {
  if (!live) return primary;
  const quietly = (call: () => void) => {
    try {
      call();
    } catch {
      // The page is a courtesy; the terminal and the journal are the record.
    }
  };
  return {
    ...primary,
    event: (event: RunEvent) => {
      primary.event(event);
      quietly(() => live.event(event));
    },
    note: (line: string) => {
      primary.note(line);
      quietly(() => live.note(line));
    },
  };
}
