import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import type { TlsMaterial } from '../lib/tls.ts';
import type { BackendName } from '../topology.ts';
import type { GatewayMetrics } from './metrics.ts';

/**
 * Client-side load balancing over one backend's instances, as a service mesh sidecar or a
 * gRPC client would do it: a keep-alive connection pool per instance, an active readiness
 * probe, round-robin over the instances that are ready, and passive ejection of an instance
 * whose connections are refused or reset (it comes back at its next good probe). With no
 * instance ready, calls are still tried: the caller's error then says what is wrong.
 *
 * A ready instance is probed seldom (every `probeIntervalMs`): a crash is seen at once by
 * passive ejection, and an idle lab must not spend its CPU asking itself whether it is up.
 * An instance that is not ready is rechecked often (`recheckIntervalMs`), so that it is back
 * in the rotation soon after it can serve again.
 */
export interface UpstreamInstance {
  readonly url: string;
  /** The pool calls go through now: over mutual TLS while `secure()` says so (full trust), else plain. */
  readonly pool: Pool;
  ready(): boolean;
  /** A connection to it was refused or reset: stop routing to it until a probe says otherwise. */
  eject(): void;
}

export interface UpstreamSnapshot {
  readonly url: string;
  readonly ready: boolean;
}

export interface UpstreamSetOptions {
  readonly dependency: BackendName;
  readonly urls: readonly string[];
  /** How often an instance that is ready is probed. */
  readonly probeIntervalMs: number;
  /** How often an instance that is not ready (or ejected) is probed. @default min(250, probeIntervalMs) */
  readonly recheckIntervalMs?: number;
  /** @default max(200, min(1000, 4 × recheckIntervalMs)) */
  readonly probeTimeoutMs?: number;
  /** Most sockets per instance. @default 64 */
  readonly connectionsPerInstance?: number;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  /** The lab's CA and the gateways' client certificate, for calls over mutual TLS. */
  readonly tls?: TlsMaterial;
  /** Whether calls go over mutual TLS now (full trust; read on every call). @default never */
  readonly secure?: () => boolean;
}

class Instance implements UpstreamInstance {
  readonly url: string;
  /** Plain HTTP: calls in zero and half trust. */
  readonly plain: Pool;
  readonly #secure: Pool | undefined;
  readonly #useSecure: () => boolean;
  #ready = false;
  /** When its last probe began (performance.now()); -Infinity before the first. */
  lastProbeAt = Number.NEGATIVE_INFINITY;
  readonly #onChange: (instance: Instance) => void;

  constructor(
    url: string,
    connections: number,
    onChange: (instance: Instance) => void,
    secure: { context?: SecureContext; use?: () => boolean; dependency: BackendName },
  ) {
    this.url = url;
    this.plain = new Pool(url, { connections });
    // The backend's certificate names its service, whatever address it is reached at (an IP
    // locally, a Service name on Kubernetes): the name checked is the dependency's. One secure
    // context for every connection: made from the PEMs per connection, a burst of new TLS
    // connections (a lab switched to full trust under load) stalled the gateway for seconds.
    this.#secure = secure.context
      ? new Pool(url.replace(/^http:/, 'https:'), {
          connections,
          connect: { secureContext: secure.context, servername: secure.dependency },
        })
      : undefined;
    this.#useSecure = secure.use ?? (() => false);
    this.#onChange = onChange;
  }

  get pool(): Pool {
    return this.#secure && this.#useSecure() ? this.#secure : this.plain;
  }

  async destroy(): Promise<void> {
    await Promise.all([this.plain, this.#secure].map((pool) => pool?.destroy().catch(() => undefined)));
  }

  ready(): boolean {
    return this.#ready;
  }

  eject(): void {
    this.setReady(false);
  }

  setReady(ready: boolean): void {
    if (this.#ready === ready) return;
    this.#ready = ready;
    this.#onChange(this);
  }
}

export class UpstreamSet {
  readonly dependency: BackendName;
  readonly #instances: readonly Instance[];
  readonly #probeIntervalMs: number;
  readonly #recheckIntervalMs: number;
  readonly #probeTimeoutMs: number;
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the sleeping timer wakes; undefined while a round of probes runs. */
  #wakeAt: number | undefined;
  #closed = false;

  constructor(options: UpstreamSetOptions) {
    if (options.urls.length === 0) throw new RangeError(`${options.dependency}: no upstream instances`);
    this.dependency = options.dependency;
    this.#probeIntervalMs = options.probeIntervalMs;
    this.#recheckIntervalMs = Math.min(options.recheckIntervalMs ?? 250, options.probeIntervalMs);
    this.#probeTimeoutMs =
      options.probeTimeoutMs ?? Math.max(200, Math.min(1000, 4 * this.#recheckIntervalMs));
    this.#metrics = options.metrics;
    this.#log = options.log;
    const context = options.tls
      ? createSecureContext({ ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key })
      : undefined;
    this.#instances = options.urls.map(
      (url) =>
        new Instance(url, options.connectionsPerInstance ?? 64, (i) => this.#changed(i), {
          ...(context ? { context } : {}),
          ...(options.secure ? { use: options.secure } : {}),
          dependency: options.dependency,
        }),
    );
    for (const instance of this.#instances) this.#publish(instance);
  }

  /**
   * The next instance round-robin, preferring ready ones that are not in `avoid` (a retry
   * goes to another instance when there is one). A retry's pick does not move the rotation:
   * otherwise every first attempt would land on the same instance.
   */
  pick(avoid: ReadonlySet<string> = new Set()): UpstreamInstance {
    const preferences: ((i: Instance) => boolean)[] = [
      (i) => i.ready() && !avoid.has(i.url),
      (i) => i.ready(),
      (i) => !avoid.has(i.url),
      () => true,
    ];
    const n = this.#instances.length;
    for (const acceptable of preferences) {
      for (let step = 0; step < n; step++) {
        const index = (this.#next + step) % n;
        const instance = this.#instances[index] as Instance;
        if (acceptable(instance)) {
          if (avoid.size === 0) this.#next = (index + 1) % n;
          return instance;
        }
      }
    }
    return this.#instances[0] as Instance;
  }

  size(): number {
    return this.#instances.length;
  }

  snapshot(): UpstreamSnapshot[] {
    return this.#instances.map((i) => ({ url: i.url, ready: i.ready() }));
  }

  /** Probes every instance once, then keeps probing (ready ones seldom, others often) until closed. */
  async start(): Promise<void> {
    await this.probeAll();
    this.#schedule();
  }

  async probeAll(): Promise<void> {
    await Promise.all(this.#instances.map((instance) => this.#probe(instance)));
  }

  /** The instances due a probe: every one not ready, and the ready ones not probed for `probeIntervalMs`. */
  #due(now: number): Instance[] {
    return this.#instances.filter((i) => !i.ready() || now - i.lastProbeAt >= this.#probeIntervalMs);
  }

  /** Sleeps until the first probe is due: an idle gateway with every instance ready wakes seldom. */
  #untilNextDue(now: number): number {
    let wait = this.#probeIntervalMs;
    for (const i of this.#instances) {
      wait = Math.min(
        wait,
        i.ready() ? i.lastProbeAt + this.#probeIntervalMs - now : this.#recheckIntervalMs,
      );
    }
    return Math.max(wait, 1);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await Promise.all(this.#instances.map((i) => i.destroy()));
  }

  #schedule(): void {
    if (this.#closed) return;
    // One round at a time: the next is scheduled only when this one is over, so a slow
    // backend can never pile probes up. Unref'd: probing alone never keeps a process alive.
    const wait = this.#untilNextDue(performance.now());
    this.#wakeAt = performance.now() + wait;
    this.#timer = setTimeout(() => {
      this.#wakeAt = undefined;
      Promise.all(this.#due(performance.now()).map((instance) => this.#probe(instance))).finally(() =>
        this.#schedule(),
      );
    }, wait);
    this.#timer.unref();
  }

  async #probe(instance: Instance): Promise<void> {
    instance.lastProbeAt = performance.now();
    try {
      // Through the pool calls go through now: in full trust the probe keeps a TLS connection
      // warm, so that the first pages after a switch do not all wait for handshakes at once.
      const response = await instance.pool.request({
        path: '/readyz',
        method: 'GET',
        signal: AbortSignal.timeout(this.#probeTimeoutMs),
      });
      await response.body.dump();
      if (!this.#closed) instance.setReady(response.statusCode === 200);
    } catch {
      if (!this.#closed) instance.setReady(false);
    }
  }

  #changed(instance: Instance): void {
    this.#publish(instance);
    // An instance ejected between rounds is rechecked soon, not when the ready ones are next due.
    if (
      !instance.ready() &&
      this.#wakeAt !== undefined &&
      this.#wakeAt - performance.now() > this.#recheckIntervalMs
    ) {
      clearTimeout(this.#timer);
      this.#schedule();
    }
    this.#log.info(
      { dependency: this.dependency, upstream: instance.url, ready: instance.ready() },
      instance.ready() ? 'upstream ready' : 'upstream not ready',
    );
  }

  #publish(instance: Instance): void {
    this.#metrics.upstreamReady.set(
      { dependency: this.dependency, upstream: instance.url },
      instance.ready() ? 1 : 0,
    );
  }
}
