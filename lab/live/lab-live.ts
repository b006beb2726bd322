/**
 * The live page of a lab started with `chaos-lab up`, served by whoever runs the lab (the CLI in the
 * foreground, the background supervisor with --detach) at base+91, and stopped with it.
 */
import type { LabLayout } from '../local/layout.ts';
import { createLabFeed, labTargets } from './lab-feed.ts';
import { startLiveServer } from './server.ts';

export interface LabLive {
  readonly url: string;
  close(): Promise<void>;
}

export async function startLabLive(options: {
  readonly layout: LabLayout;
  readonly adminToken: string;
  readonly subtitle: string;
}): Promise<LabLive> {
  const { layout } = options;
  const feed = createLabFeed({
    gateways: Object.fromEntries(
      Object.entries(layout.gateways).map(([strategy, plan]) => [strategy, plan.url]),
    ),
    ...labTargets(layout),
    adminToken: options.adminToken,
    subtitle: options.subtitle,
  });
  try {
    const server = await startLiveServer({
      model: feed.model,
      port: layout.live.port,
      onWatchers: (count) => feed.watchers(count),
    });
    return {
      url: server.url,
      close: async () => {
        feed.close();
        await server.close();
      },
    };
  } catch (err) {
    feed.close();
    throw err;
  }
}
