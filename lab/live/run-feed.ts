/**
 * The run feed: `chaos-lab run`'s events (the ones it journals) turned into the live page's state. It is a
 * ProgressSink, so it hangs beside the terminal's display without the runner knowing about pages.
 *
 * Time base: seconds since the variant's load started, as the report's x axis. A phase's band opens when
 * its faults are all in place and closes when their removal is reported, which is where the report puts
 * the phase too (its window covers only the time the faults were all applied).
 */
import path from 'node:path';
import type { RunEvent } from '../runner/journal.ts';
import { claimLine } from '../runner/progress.ts';
import type { ProgressSink } from '../runner/run.ts';
import { type LiveClaim, type LiveFault, LiveModel } from './model.ts';

export interface RunFeedOptions {
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** @default 600 */
  readonly historySeconds?: number;
  /** The folder run folders are created in, as the user should read it (`results`): the page names the report. */
  readonly resultsDir?: string;
  /** Which load driver measures the run. @default builtin */
  readonly driver?: 'builtin' | 'k6';
}

export interface RunFeed {
  readonly model: LiveModel;
  readonly sink: ProgressSink;
}

/** From when latency runs depends on who measures it, as the report says too. */
const LATENCY_NOTES = {
  builtin: "latency from each request's intended send time (open-model load), as in the report",
  k6: "latency measured by k6, from each request's actual send, as in the report",
} as const;

interface CurrentPhase {
  readonly name: string;
  readonly index: number;
  readonly durationMs: number;
  readonly faults: readonly string[];
  /** `latency on coin`, as the report's band details. */
  readonly applied: string[];
  injected: number;
}

export function createRunFeed(options: RunFeedOptions = {}): RunFeed {
  const now = options.now ?? Date.now;
  let loadStartedAt: number | undefined;
  const position = () => (loadStartedAt === undefined ? 0 : (now() - loadStartedAt) / 1000);
  const model = new LiveModel({
    feed: 'run',
    title: 'chaos-lab run',
    subtitle: 'validating the experiment',
    latencyNote: LATENCY_NOTES[options.driver ?? 'builtin'],
    xTitle: 'seconds since load started',
    position,
    now,
    ...(options.historySeconds !== undefined ? { historySeconds: options.historySeconds } : {}),
  });

  let phases: readonly { readonly name: string; readonly durationMs: number }[] = [];
  let variants: readonly string[] = [];
  let variant = '';
  let runId = '';
  let phase: CurrentPhase | undefined;
  const active = new Map<string, { fault: LiveFault; ids: readonly string[] }>();
  const claims: LiveClaim[] = [];

  const variantStep = () =>
    variants.length > 1 ? `variant ${variant} (${variants.indexOf(variant) + 1} of ${variants.length})` : '';
  const step = (...parts: string[]) => parts.filter(Boolean).join(' · ');
  const showFaults = () => model.setFaults([...active.values()].map((a) => a.fault));
  const bandKey = (name: string) => `phase:${name}`;

  const openPhaseBand = (current: CurrentPhase) => {
    model.openBand({
      key: bandKey(current.name),
      from: position(),
      label: current.name,
      tone: current.faults.length > 0 ? 'strong' : 'plain',
      ...(current.applied.length > 0 ? { detail: current.applied.join(', ') } : {}),
    });
    model.setStage({
      label: current.name,
      step: step(`phase ${current.index + 1} of ${phases.length}`, variantStep()),
      faults: current.faults,
      endsAt: now() + current.durationMs,
      tone: current.faults.length > 0 ? 'fault' : 'plain',
    });
  };

  /** Ends every open band here; a phase stopped early is labelled as the report labels it. */
  const closeOpenBands = (cutShort: boolean) => {
    const snapshot = model.snapshot();
    for (const band of snapshot.bands) {
      if (band.to !== null) continue;
      if (cutShort && band.key.startsWith('phase:')) {
        model.openBand({ ...band, label: `${band.label} (cut short)` });
      }
      model.closeBand(band.key, position());
    }
  };

  const handle = (event: RunEvent): void => {
    switch (event.type) {
      case 'run-started':
        phases = event.phases;
        variants = event.variants;
        runId = event.runId;
        model.setHeader({
          title: event.experiment.name,
          subtitle: `${event.rate} rps to each of ${event.gateways.join(', ')} · run ${event.runId}`,
          gateways: event.gateways,
        });
        model.setStage({ label: 'starting the lab', faults: [], endsAt: null, tone: 'idle' });
        return;
      case 'lab-ready':
        model.setStage({ label: 'lab ready', faults: [], endsAt: null, tone: 'idle' });
        return;
      case 'variant-started':
        variant = event.variant;
        loadStartedAt = undefined;
        phase = undefined;
        model.resetSeries();
        model.setStage({
          label: 'starting the load',
          step: variantStep(),
          faults: [],
          endsAt: null,
          tone: 'idle',
        });
        return;
      case 'load-started': {
        loadStartedAt = now();
        const total = event.warmupMs + phases.reduce((sum, p) => sum + p.durationMs, 0);
        model.setPlannedEnd(total / 1000);
        if (event.warmupMs > 0) {
          model.openBand({ key: 'warm-up', from: 0, label: 'warm-up', tone: 'plain' });
        }
        model.setStage({
          label: 'warm-up',
          step: variantStep(),
          faults: [],
          endsAt: now() + event.warmupMs,
          tone: 'plain',
        });
        return;
      }
      case 'warmup-waiting':
        // Past its shortest warm-up the countdown would sit at 0: say what the run waits for instead.
        model.setStage({
          label: 'warm-up: waiting for the lab to be steady',
          step: step(event.problems.join('; '), variantStep()),
          faults: [],
          endsAt: null,
          tone: 'plain',
        });
        return;
      case 'warmup-finished':
        model.setPlannedEnd((event.ms + phases.reduce((sum, p) => sum + p.durationMs, 0)) / 1000);
        return;
      case 'phase-started': {
        closeOpenBands(false);
        phase = {
          name: event.phase,
          index: Math.max(
            0,
            phases.findIndex((p) => p.name === event.phase),
          ),
          durationMs: event.durationMs,
          faults: event.faults,
          applied: [],
          injected: 0,
        };
        if (event.faults.length === 0) openPhaseBand(phase);
        else {
          model.setStage({
            label: event.phase,
            step: step(`phase ${phase.index + 1} of ${phases.length}`, variantStep(), 'injecting'),
            faults: event.faults,
            endsAt: null,
            tone: 'fault',
          });
        }
        return;
      }
      case 'fault-injected': {
        const instances = event.applied.map((a) => a.instance);
        if (event.kind === 'kill') model.note(`killed ${instances.join(', ')} (the supervisor restarts it)`);
        else {
          const ids = event.applied.map((a) => a.id);
          const key = ids.join(' ');
          active.set(key, {
            fault: { key, description: event.fault, instances, expiresAt: null },
            ids,
          });
          showFaults();
        }
        if (phase && phase.name === event.phase) {
          phase.injected++;
          phase.applied.push(`${event.kind} on ${event.service}`);
          if (phase.injected === phase.faults.length) openPhaseBand(phase);
        }
        return;
      }
      case 'fault-removed': {
        const removed = new Set(event.ids);
        for (const [key, entry] of active) if (entry.ids.some((id) => removed.has(id))) active.delete(key);
        showFaults();
        model.closeBand(bandKey(event.phase), position());
        return;
      }
      case 'phase-finished':
        model.closeBand(bandKey(event.phase), position());
        return;
      case 'second':
        if (event.variant === variant) model.addSecond({ t: event.t, gateways: event.gateways });
        return;
      case 'variant-finished':
        closeOpenBands(false);
        model.setStage({
          label: 'load stopped',
          step: variantStep(),
          faults: [],
          endsAt: null,
          tone: 'idle',
        });
        return;
      case 'rollback':
        closeOpenBands(true);
        model.setStage({
          label: event.reason === 'abort' ? 'aborted: rolling back' : 'failed: rolling back',
          faults: [],
          endsAt: null,
          tone: 'bad',
        });
        if (event.error) model.note(event.error);
        return;
      case 'warning':
        model.note(`warning: ${event.message}`);
        return;
      case 'claim':
        claims.push({ text: claimLine(event, variants.length > 1), holds: event.holds });
        return;
      case 'audit':
        if (event.leftoverFaults === null)
          model.note(`leftover faults unknown: ${event.error ?? 'not audited'}`);
        else if (event.leftoverFaults.length > 0) {
          model.note(
            `still active after the run: ${event.leftoverFaults.map((f) => `${f.kind} on ${f.instance}`).join(', ')}`,
          );
        }
        return;
      case 'run-finished':
        active.clear();
        showFaults();
        closeOpenBands(event.status !== 'completed');
        model.setOutcome({
          status: event.status,
          verdict: event.verdict,
          ...((event.verdictReason ?? event.error) ? { reason: event.verdictReason ?? event.error } : {}),
          claims: [...claims],
          ...(options.resultsDir !== undefined && runId
            ? { report: path.join(options.resultsDir, runId, 'report.html') }
            : {}),
        });
        model.setStage({
          label: event.status === 'completed' ? 'finished' : event.status,
          step: `verdict: ${event.verdict}`,
          faults: [],
          endsAt: null,
          // Grey for no verdict: nothing was shown wrong, nothing was shown at all.
          tone:
            event.verdict === 'held'
              ? 'done'
              : event.verdict === 'violated' || event.status !== 'completed'
                ? 'bad'
                : 'idle',
        });
        return;
      default:
        return;
    }
  };

  return {
    model,
    sink: {
      event: handle,
      note: (line) => model.note(line),
    },
  };
}
