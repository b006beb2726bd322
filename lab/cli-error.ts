/**
 * An expected failure of a CLI command: printed as one line (plus a hint), never as a stack
 * trace. `exitCode` 1 is a runtime failure (no lab, an instance unreachable, an agent said
 * no), 2 is bad usage or input.
 */
export class CliError extends Error {
  readonly exitCode: 1 | 2;
  readonly hint: string | undefined;
  /** Extra lines shown under the message (log tails and the like). */
  readonly details: readonly string[];

  constructor(
    message: string,
    options: { exitCode?: 1 | 2; hint?: string; details?: readonly string[] } = {},
  ) {
    super(message);
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }
}

export function usageError(message: string, hint?: string): CliError {
  return new CliError(message, { exitCode: 2, ...(hint ? { hint } : {}) });
}
