import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FolderProbeFs, makeFolders, resultsFolderProblem } from './results-folder.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'chaos-results-folder-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('resultsFolderProblem', () => {
  it('takes a folder to be made below one that can hold it, and leaves nothing behind', async () => {
    expect(await resultsFolderProblem(path.join(root, 'a', 'b'))).toBeUndefined();
    expect(await resultsFolderProblem(root)).toBeUndefined();
    expect(readdirSync(root)).toEqual([]);
  });

  it('says what is in the way: a file, a link to nothing', async () => {
    writeFileSync(path.join(root, 'file'), '');
    expect(await resultsFolderProblem(path.join(root, 'file'))).toBe('not a folder');
    expect(await resultsFolderProblem(path.join(root, 'file', 'x'))).toBe(
      `${path.join(root, 'file')} is not a folder`,
    );
    symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    expect(await resultsFolderProblem(path.join(root, 'dangling', 'out'))).toBe(
      `${path.join(root, 'dangling')} is a link to nothing`,
    );
  });

  it('gives up on a filesystem that does not answer, and the event loop turns meanwhile', async () => {
    const silent: FolderProbeFs = {
      stat: () => new Promise(() => {}),
      lstat: () => new Promise(() => {}),
      mkdir: () => new Promise(() => {}),
      writeFile: () => new Promise(() => {}),
      rm: () => new Promise(() => {}),
    };
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    try {
      expect(await resultsFolderProblem('/mnt/hung/results', { fs: silent, timeoutMs: 100 })).toBe(
        'the filesystem did not answer within 0.1 s',
      );
    } finally {
      clearInterval(ticker);
    }
    // A Ctrl-C handler runs on this loop: it was never held.
    expect(ticks).toBeGreaterThan(3);
  });
});

describe('makeFolders', () => {
  it('makes every missing folder, and takes those there already', () => {
    makeFolders(path.join(root, 'a', 'b', 'c'));
    makeFolders(path.join(root, 'a', 'b'));
    expect(existsSync(path.join(root, 'a', 'b', 'c'))).toBe(true);
  });

  it('fails at once below a link to nothing, where a recursive mkdir spins', () => {
    symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    expect(() => makeFolders(path.join(root, 'dangling', 'out'))).toThrow(/ENOENT/);
  });
});
