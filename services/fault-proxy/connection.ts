import { connect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { type Direction, Lane, shareAt, synLoss } from './emulation.ts';
import type { ProxyFault } from './faults.ts';
import type { ProxyObserver } from './stats.ts';

/**
 * One client connection relayed to the upstream, with the faults applied on the way.
 *
 * reset: a share of new connections is reset (RST, `socket.resetAndDestroy()`) when the
 * client's first bytes arrive, before anything reaches the backend. Not at accept: then a
 * client could notice the reset before it sends anything and simply reconnect; this way it
 * has committed a request and sees ECONNRESET for it, as when a middlebox or a dying peer
 * kills a connection under a call. Connections already open are never reset: with HTTP
 * keep-alive, the fault bites as pooled connections are replaced. The roll comes before any
 * latency on requests: a connection that survives it has its first bytes delayed like the rest.
 *
 * A refused or failed upstream also resets the client: the proxy already accepted the
 * connection, so an RST is the nearest an L4 relay can come to "connection refused".
 */

/** Queued bytes (in the lane and the destination's buffer) before the source is paused. */
export const HIGH_WATER_BYTES = 1 << 20;
/** …and resumed. */
export const LOW_WATER_BYTES = 256 << 10;

export interface RelayOptions {
  readonly upstream: { readonly host: string; readonly port: number };
  readonly clock: () => number;
  readonly random: () => number;
  /** The faults in force now. */
  readonly faults: () => readonly ProxyFault[];
  readonly observer: ProxyObserver;
  readonly log: Logger;
}

export interface Relay {
  /** Ends the connection at once (both sides), without RST. */
  destroy(): void;
  /** Resolves when both sides are closed. */
  readonly closed: Promise<void>;
}

function reset(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

/** One direction: reads from `source`, holds chunks in a lane, writes them to `sink` when due. */
class Pipe {
  readonly #source: Socket;
  readonly #sink: Socket;
  readonly #lane: Lane;
  readonly #clock: () => number;
  #timer: NodeJS.Timeout | undefined;
  #timerAt: number | undefined;
  #sourceEnded = false;
  #sinkEnded = false;
  #paused = false;
  #stopped = false;

  constructor(
    source: Socket,
    sink: Socket,
    lane: Lane,
    clock: () => number,
    direction: Direction,
    observer: ProxyObserver,
    /** Sees each chunk first; false drops it (the connection is being torn down). */
    admit: () => boolean = () => true,
  ) {
    this.#source = source;
    this.#sink = sink;
    this.#lane = lane;
    this.#clock = clock;
    source.on('data', (chunk: Buffer) => {
      if (this.#stopped || !admit()) return;
      observer.bytes(direction, chunk.length);
      lane.push(chunk);
      this.#pump();
    });
    source.on('end', () => {
      this.#sourceEnded = true;
      this.#pump();
    });
    sink.on('drain', () => this.#regulate());
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #pump(): void {
    if (this.#stopped || this.#sink.destroyed) return;
    for (const chunk of this.#lane.due(this.#clock())) this.#sink.write(chunk);
    if (this.#sourceEnded && this.#lane.queuedChunks === 0 && !this.#sinkEnded) {
      // Half-close passes through, after the data held before it.
      this.#sinkEnded = true;
      this.#sink.end();
    }
    this.#schedule();
    this.#regulate();
  }

  /** One timer per direction, for the oldest held chunk. */
  #schedule(): void {
    const at = this.#lane.nextAt();
    if (at === this.#timerAt && this.#timer) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === undefined) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = undefined;
        this.#pump();
      },
      Math.max(0, Math.ceil(at - this.#clock())),
    );
  }

  /** Backpressure: the source waits while too much is held or buffered for the sink. */
  #regulate(): void {
    const backlog = this.#lane.queuedBytes + this.#sink.writableLength;
    if (!this.#paused && backlog > HIGH_WATER_BYTES) {
      this.#paused = true;
      this.#source.pause();
    } else if (this.#paused && backlog < LOW_WATER_BYTES) {
      this.#paused = false;
      this.#source.resume();
    }
  }
}

export function relay(client: Socket, options: RelayOptions): Relay {
  const { clock, random, faults, observer, log } = options;
  observer.accepted();
  client.setNoDelay(true);
  // Nothing is read until the upstream connection is through (after any SYN loss).
  client.pause();

  let upstream: Socket | undefined;
  let synTimer: NodeJS.Timeout | undefined;
  const pipes: Pipe[] = [];
  let finished = false;
  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });

  const finish = () => {
    if (finished) return;
    finished = true;
    if (synTimer) clearTimeout(synTimer);
    for (const pipe of pipes) pipe.stop();
    observer.closed();
    markClosed();
  };
  const whenBothClosed = () => {
    if (client.destroyed && (upstream === undefined || upstream.destroyed)) finish();
  };
  /** Tears both sides down with RST, as a failure should look. */
  const abort = () => {
    reset(client);
    if (upstream) reset(upstream);
    for (const pipe of pipes) pipe.stop();
  };

  client.on('error', (err) => {
    log.debug({ err }, 'client connection failed');
    abort();
  });
  client.on('close', (hadError) => {
    if (hadError) abort();
    // Gone before the upstream side was through: nothing will ever use it.
    else if (upstream && pipes.length === 0) upstream.destroy();
    whenBothClosed();
  });

  let first = true;
  const admitFirst = (): boolean => {
    if (!first) return true;
    first = false;
    const share = shareAt(faults(), 'reset', clock());
    if (share <= 0) return true;
    const hit = random() < share;
    observer.resetRolled(hit);
    if (!hit) return true;
    log.debug('connection reset (chaos: reset)');
    abort();
    return false;
  };

  const open = () => {
    synTimer = undefined;
    if (client.destroyed) return;
    const socket = connect({ host: options.upstream.host, port: options.upstream.port, allowHalfOpen: true });
    upstream = socket;
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      observer.upstreamFailed();
      log.debug({ err }, 'upstream connection failed');
      abort();
    });
    socket.on('close', (hadError) => {
      if (hadError) abort();
      whenBothClosed();
    });
    socket.once('connect', () => {
      if (client.destroyed) {
        socket.destroy();
        return;
      }
      const lane = (direction: Direction) => new Lane({ direction, clock, random, faults, observer });
      pipes.push(new Pipe(client, socket, lane('upstream'), clock, 'upstream', observer, admitFirst));
      pipes.push(new Pipe(socket, client, lane('downstream'), clock, 'downstream', observer));
      client.resume();
    });
  };

  const syn = synLoss(faults(), clock(), random);
  if (syn.rolls > 0) observer.syn(syn);
  if (syn.penaltyMs > 0) synTimer = setTimeout(open, syn.penaltyMs);
  else open();

  return {
    destroy() {
      client.destroy();
      upstream?.destroy();
      for (const pipe of pipes) pipe.stop();
    },
    closed,
  };
}
