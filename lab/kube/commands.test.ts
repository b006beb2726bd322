/** The docker/kind runner with real child processes (sh), as `up --target kind` uses it. */
import { describe, expect, it } from 'vitest';
import { commandLine, processRunner, TAIL_LINES } from './commands.ts';

const run = processRunner(process.env);

describe('processRunner', () => {
  it('streams stdout and stderr lines as they come and keeps stdout whole', async () => {
    const lines: string[] = [];
    const result = await run('sh', ['-c', 'echo one; echo two >&2; printf "three"'], {
      onLine: (l) => lines.push(l),
    });
    expect(result).toMatchObject({ exitCode: 0, notFound: false, aborted: false });
    expect(lines.sort()).toEqual(['one', 'three', 'two']);
    expect(result.stdout).toBe('one\nthree');
    expect(result.stderr).toBe('two\n');
  });

  it('gives the exit code and the last lines of a failure', async () => {
    const result = await run('sh', ['-c', 'for i in $(seq 1 50); do echo line $i; done; exit 3']);
    expect(result.exitCode).toBe(3);
    expect(result.tail).toHaveLength(TAIL_LINES);
    expect(result.tail.at(-1)).toBe('line 50');
  });

  it('says "not found" for an executable that is not on PATH, rather than a failure', async () => {
    const result = await processRunner({ PATH: '/nonexistent' })('docker', ['info']);
    expect(result).toMatchObject({ exitCode: 127, notFound: true });
  });

  it('kills the child when the signal aborts', async () => {
    const abort = new AbortController();
    const result = await run('sh', ['-c', 'echo started; exec sleep 30'], {
      signal: abort.signal,
      onLine: (line) => {
        if (line === 'started') abort.abort();
      },
    });
    expect(result).toMatchObject({ aborted: true, exitCode: 130 });
  });

  it('runs nothing when the signal has already aborted', async () => {
    const result = await run('sh', ['-c', 'echo ran'], { signal: AbortSignal.abort() });
    expect(result).toMatchObject({ aborted: true, stdout: '' });
  });
});

describe('commandLine', () => {
  it('quotes only what a shell would need quoted', () => {
    expect(commandLine('docker', ['build', '-t', 'chaos-lab:dev', '.'])).toBe(
      'docker build -t chaos-lab:dev .',
    );
    expect(commandLine('sh', ['-c', 'echo a b'])).toBe('sh -c "echo a b"');
  });
});
