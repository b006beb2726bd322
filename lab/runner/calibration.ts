/**
 * Calibration: the fault as configured next to the fault as the faulty instances saw it. Configured
 * latency that turns out 2-4× larger in the measurements usually goes unnoticed; here it is in the result.
 *
 * A kind is calibrated when its definition (lab/faults/kinds/) says what it configures, under the keys a
 * target's `observe()` returns for the same kind, so that a report can put them side by side.
 */
import type { Params } from '../faults/kind.ts';
import {
  type AnyFault,
  configuredOf as configuredFigures,
  describeParams,
  faultKind,
} from '../faults/registry.ts';
import { instanceIds } from './experiment.ts';

export function isCalibrated(fault: AnyFault): boolean {
  return faultKind(fault.kind).configured !== undefined;
}

/**
 * The configured figures, e.g. `{ addedLatencyMs: 400, jitterMs: 20, requestLatencyMs: 200,
 * responseLatencyMs: 200 }` (a latency both ways: what a call pays in all, then way by way); only for
 * a calibrated fault.
 */
export function configuredOf(fault: AnyFault): Params {
  const figures = configuredFigures(fault);
  if (figures === undefined)
    throw new Error(`${fault.kind} faults are not calibrated: ask isCalibrated first`);
  return figures;
}

/** `latency on coin (delay 400ms, jitter 20ms)`; `on coin-1` when not every instance. */
export function describeFault(fault: AnyFault): string {
  const params = describeParams(fault);
  const where = onEveryInstance(fault) ? fault.service : fault.instances.join(', ');
  return params ? `${fault.kind} on ${where} (${params})` : `${fault.kind} on ${where}`;
}

function onEveryInstance(fault: AnyFault): boolean {
  // A gateway fault is applied by hand to the gateways it names; they are not numbered replicas.
  return fault.service !== 'gateway' && fault.instances.length >= instanceIds(fault.service).length;
}
