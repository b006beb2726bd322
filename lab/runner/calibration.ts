/**
 * Calibration: the fault as configured next to the fault as the faulty instances saw it. Configured
 * latency that turns out 2-4× larger in the measurements usually goes unnoticed; here it is in the result.
 *
 * `configured` uses the keys a target's `observe()` is expected to return for the same kind, so a report
 * can put them side by side: latency → addedLatencyMs (and jitterMs), loss → lossRate, http-error →
 * errorRate (shares 0..1).
 */
import { formatDuration } from '../duration.ts';
import { type Fault, instanceIds } from './experiment.ts';

export type CalibratedKind = 'latency' | 'loss' | 'http-error';

export function isCalibrated(fault: Fault): fault is Extract<Fault, { kind: CalibratedKind }> {
  return fault.kind === 'latency' || fault.kind === 'loss' || fault.kind === 'http-error';
}

export function configuredOf(fault: Extract<Fault, { kind: CalibratedKind }>): Record<string, number> {
  switch (fault.kind) {
    case 'latency':
      return { addedLatencyMs: fault.delayMs, jitterMs: fault.jitterMs };
    case 'loss':
      return { lossRate: fault.percent / 100 };
    case 'http-error':
      return { errorRate: fault.percent / 100 };
  }
}

/** `latency on coin (delay 400ms, jitter 20ms)`; `on coin-1` when not every instance. */
export function describeFault(fault: Fault): string {
  const where =
    fault.instances.length < instanceIds(fault.service).length ? fault.instances.join(', ') : fault.service;
  const params = describeParams(fault);
  return params ? `${fault.kind} on ${where} (${params})` : `${fault.kind} on ${where}`;
}

function describeParams(fault: Fault): string {
  switch (fault.kind) {
    case 'latency':
      return fault.jitterMs > 0
        ? `delay ${formatDuration(fault.delayMs)}, jitter ${formatDuration(fault.jitterMs)}`
        : `delay ${formatDuration(fault.delayMs)}`;
    case 'loss':
      return `${fault.percent}%`;
    case 'http-error':
      return `${fault.status} on ${fault.percent}%`;
    case 'worker-panic':
      return `${fault.percent}% of tasks`;
    case 'kill':
      return '';
  }
}
