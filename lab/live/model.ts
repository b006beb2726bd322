/**
 * What a live page shows, whichever feed fills it: the run feed (RunEvents of `chaos-lab run`) or the lab
 * feed (the gateways' /metrics and the fault listings of a lab started with `chaos-lab up`). One state for
 * both, so the page has one renderer and the two pages cannot drift apart.
 *
 * The x axis is seconds, as in the report: since the load started (run) or since the page began measuring
 * (lab). Per-second figures have the report's own shape (`TimeseriesPoint`), so the page draws them with
 * the report's charts. History is bounded: a lab page left open all day holds the last few minutes only.
 */
import type { RunStatus, TimeseriesPoint, Verdict } from '../runner/result.ts';

/** A shaded window on the charts: a phase of a run, or a fault seen in the lab. */
export interface LiveBand {
  /** Unique among the bands: how a feed closes the band it opened. */
  readonly key: string;
  /** Seconds on the x axis. */
  readonly from: number;
  /** Null while the window lasts: it is drawn up to now. */
  readonly to: number | null;
  readonly label: string;
  readonly detail?: string;
  /** `strong` (hatched) for windows with a fault, as in the report. */
  readonly tone: 'plain' | 'strong';
}

/** A fault in place right now. */
export interface LiveFault {
  readonly key: string;
  /** `latency on coin (delay 400 ms)` */
  readonly description: string;
  /** The instances it is applied to. */
  readonly instances: readonly string[];
  /** Epoch ms when its lease runs out unless renewed; null when the feed does not know. */
  readonly expiresAt: number | null;
}

/** Where the run (or the lab) is: the big box at the top of the page. */
export interface LiveStage {
  /** `baseline`, `fault`, `warm-up`, `starting the lab`, `finished`, `watching the lab`… */
  readonly label: string;
  /** `phase 2 of 3`, `variant recovered (1 of 2)`. */
  readonly step?: string;
  /** What the stage injects, e.g. `latency on coin (delay 400ms)`. */
  readonly faults: readonly string[];
  /** Epoch ms at which it ends, for the countdown; null when it has no planned end. */
  readonly endsAt: number | null;
  readonly tone: 'idle' | 'plain' | 'fault' | 'done' | 'bad';
}

export interface LiveClaim {
  /** One line, as the terminal prints it: `✓ resilient p99 < 350ms in fault: 112ms`. */
  readonly text: string;
  readonly holds: boolean | null;
}

/** How a run ended: shown instead of the faults once it is over. */
export interface LiveOutcome {
  readonly status: RunStatus;
  readonly verdict: Verdict;
  readonly reason?: string;
  readonly claims: readonly LiveClaim[];
  /** Where the durable record is, e.g. `results/20261124-102052-tour/report.html`. */
  readonly report?: string;
}

export interface LiveSnapshot {
  readonly feed: 'run' | 'lab';
  readonly title: string;
  readonly subtitle: string;
  /** In the order the charts and cards show them. */
  readonly gateways: readonly string[];
  /** How the latency figures were measured, said on the page. */
  readonly latencyNote: string;
  readonly x: {
    readonly title: string;
    /** Seconds on the x axis at the moment of the snapshot. */
    readonly now: number;
    /** Where the planned run ends on the x axis, so the axis does not rescale every second. */
    readonly plannedEnd: number | null;
    /** The oldest second kept. */
    readonly historySeconds: number;
  };
  /** Oldest first; at most `historySeconds` of them. */
  readonly seconds: readonly TimeseriesPoint[];
  /** Requests per gateway since the feed's time base began (not bounded by the history). */
  readonly totals: Readonly<Record<string, number>>;
  readonly bands: readonly LiveBand[];
  readonly stage: LiveStage;
  readonly faults: readonly LiveFault[];
  readonly outcome: LiveOutcome | null;
  /** The latest lines for a human (start-up progress, warnings), newest last. */
  readonly notes: readonly string[];
  /** Grows with every change: a page that has this version has seen everything. */
  readonly version: number;
  /** Epoch ms of the snapshot. */
  readonly at: number;
}

export interface LiveModelOptions {
  readonly feed: LiveSnapshot['feed'];
  readonly title: string;
  readonly subtitle?: string;
  readonly gateways?: readonly string[];
  readonly latencyNote: string;
  readonly xTitle: string;
  /** Where "now" is on the x axis; the feed owns the time base. */
  readonly position: () => number;
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** @default 600 (ten minutes) */
  readonly historySeconds?: number;
  /** @default 4 */
  readonly maxNotes?: number;
  /** Closed bands beyond this many are dropped, oldest first. @default 60 */
  readonly maxBands?: number;
}

const IDLE_STAGE: LiveStage = { label: 'starting', faults: [], endsAt: null, tone: 'idle' };

type Header = Pick<LiveSnapshot, 'title' | 'subtitle' | 'gateways' | 'latencyNote'>;

export class LiveModel {
  readonly #options: LiveModelOptions;
  readonly #now: () => number;
  readonly #historySeconds: number;
  #header: Header;
  #xTitle: string;
  #plannedEnd: number | null = null;
  #seconds: TimeseriesPoint[] = [];
  #totals: Record<string, number> = {};
  #bands: LiveBand[] = [];
  #stage: LiveStage = IDLE_STAGE;
  #faults: LiveFault[] = [];
  #outcome: LiveOutcome | null = null;
  #notes: string[] = [];
  #version = 0;
  readonly #listeners = new Set<() => void>();

  constructor(options: LiveModelOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#historySeconds = options.historySeconds ?? 600;
    if (!(this.#historySeconds > 0)) {
      throw new RangeError(`historySeconds must be positive, got ${this.#historySeconds}`);
    }
    this.#xTitle = options.xTitle;
    this.#header = {
      title: options.title,
      subtitle: options.subtitle ?? '',
      gateways: options.gateways ?? [],
      latencyNote: options.latencyNote,
    };
  }

  /** Called after every change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  setHeader(header: Partial<Header>): void {
    this.#header = { ...this.#header, ...header };
    this.#changed();
  }

  /** Where the planned timeline ends, in x seconds; null for a lab, which has no end. */
  setPlannedEnd(x: number | null): void {
    this.#plannedEnd = x;
    this.#changed();
  }

  setStage(stage: LiveStage): void {
    this.#stage = stage;
    this.#changed();
  }

  setFaults(faults: readonly LiveFault[]): void {
    this.#faults = [...faults];
    this.#changed();
  }

  setOutcome(outcome: LiveOutcome | null): void {
    this.#outcome = outcome;
    this.#changed();
  }

  note(line: string): void {
    this.#notes = [...this.#notes, line].slice(-(this.#options.maxNotes ?? 4));
    this.#changed();
  }

  /**
   * One second of figures. A second already held (same t) is replaced; `requests` counts toward the
   * totals (default: the second's rate, which for one second is its request count).
   */
  addSecond(point: TimeseriesPoint, requests?: Readonly<Partial<Record<string, number>>>): void {
    const at = this.#seconds.findIndex((s) => s.t >= point.t);
    if (at === -1) this.#seconds.push(point);
    else if (this.#seconds[at]?.t === point.t) this.#seconds[at] = point;
    else this.#seconds.splice(at, 0, point);
    for (const [gateway, second] of Object.entries(point.gateways)) {
      const count = requests?.[gateway] ?? Math.round(second?.rps ?? 0);
      this.#totals[gateway] = (this.#totals[gateway] ?? 0) + count;
    }
    this.#trim();
    this.#changed();
  }

  openBand(band: Omit<LiveBand, 'to'>): void {
    this.#bands = [...this.#bands.filter((b) => b.key !== band.key), { ...band, to: null }];
    this.#trim();
    this.#changed();
  }

  closeBand(key: string, to: number): void {
    let found = false;
    this.#bands = this.#bands.map((b) => {
      if (b.key !== key || b.to !== null) return b;
      found = true;
      return { ...b, to: Math.max(b.from, to) };
    });
    if (found) this.#changed();
  }

  /** Whether a band with this key is open. */
  isOpen(key: string): boolean {
    return this.#bands.some((b) => b.key === key && b.to === null);
  }

  /** A new time base (the next variant of a run): the figures and bands of the last one go. */
  resetSeries(xTitle?: string): void {
    this.#seconds = [];
    this.#totals = {};
    this.#bands = [];
    if (xTitle !== undefined) this.#xTitle = xTitle;
    this.#changed();
  }

  snapshot(): LiveSnapshot {
    this.#trim();
    return {
      feed: this.#options.feed,
      ...this.#header,
      x: {
        title: this.#xTitle,
        now: this.#position(),
        plannedEnd: this.#plannedEnd,
        historySeconds: this.#historySeconds,
      },
      seconds: [...this.#seconds],
      totals: { ...this.#totals },
      bands: [...this.#bands],
      stage: this.#stage,
      faults: [...this.#faults],
      outcome: this.#outcome,
      notes: [...this.#notes],
      version: this.#version,
      at: this.#now(),
    };
  }

  #position(): number {
    const x = this.#options.position();
    return Number.isFinite(x) ? Math.max(0, x) : 0;
  }

  /** Keeps the last `historySeconds` of figures and the bands that reach into them. */
  #trim(): void {
    const newest = Math.max(this.#position(), ...this.#seconds.map((s) => s.t + 1));
    const cutoff = newest - this.#historySeconds;
    if (cutoff > 0) {
      this.#seconds = this.#seconds.filter((s) => s.t + 1 > cutoff);
      this.#bands = this.#bands.filter((b) => b.to === null || b.to > cutoff);
    }
    const closed = this.#bands.filter((b) => b.to !== null);
    const excess = closed.length - (this.#options.maxBands ?? 60);
    if (excess > 0) {
      const dropped = new Set(closed.slice(0, excess));
      this.#bands = this.#bands.filter((b) => !dropped.has(b));
    }
  }

  #changed(): void {
    this.#version++;
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch {
        // A page that fails to update must not break the feed (nor the run feeding it).
      }
    }
  }
}
