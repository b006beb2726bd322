import { describe, expect, it } from 'vitest';
import { asLabError, errors, isLabError, isTemporary, isTimeout, LabError } from './errors.ts';

describe('LabError', () => {
  it('carries status, reason, metadata, cause and behaviour', () => {
    const cause = new Error('socket hang up');
    const err = new LabError({
      status: 503,
      reason: 'DEPENDENCY_UNAVAILABLE',
      message: 'coin is down',
      temporary: true,
      metadata: { dependency: 'coin' },
      cause,
    });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('LabError');
    expect(err.cause).toBe(cause);
    expect(err.temporary()).toBe(true);
    expect(err.timeout()).toBe(false);
    expect(err.toJSON()).toEqual({
      status: 503,
      reason: 'DEPENDENCY_UNAVAILABLE',
      message: 'coin is down',
      metadata: { dependency: 'coin' },
    });
    expect(JSON.parse(JSON.stringify(err))).toEqual(err.toJSON());
  });

  it('is neither temporary nor a timeout unless it says so, with empty metadata', () => {
    const err = new LabError({ status: 400, reason: 'X', message: 'x' });
    expect([err.temporary(), err.timeout()]).toEqual([false, false]);
    expect(err.metadata).toEqual({});
  });
});

describe('behaviour predicates', () => {
  it('ask the error, whatever its type', () => {
    expect(isTemporary({ temporary: () => true })).toBe(true);
    expect(isTimeout({ timeout: () => true })).toBe(true);
    expect(isTemporary({ temporary: () => 'yes' })).toBe(false);
    expect(isTemporary({ temporary: true })).toBe(false);
    for (const value of [undefined, null, 'boom', 42, new Error('plain')]) {
      expect(isTemporary(value)).toBe(false);
      expect(isTimeout(value)).toBe(false);
    }
  });

  it('match the factories', () => {
    expect(isTemporary(errors.unavailable('DOWN', 'down'))).toBe(true);
    expect(isTimeout(errors.unavailable('DOWN', 'down'))).toBe(false);
    expect(isTimeout(errors.timeout('SLOW', 'slow'))).toBe(true);
    expect(isTemporary(errors.timeout('SLOW', 'slow'))).toBe(false);
    expect(isTemporary(errors.internal('BUG', 'bug'))).toBe(false);
  });
});

describe('errors factories', () => {
  it('use the right statuses', () => {
    expect(errors.badRequest('A', 'a').status).toBe(400);
    expect(errors.unauthorized('A', 'a').status).toBe(401);
    expect(errors.forbidden('A', 'a').status).toBe(403);
    expect(errors.notFound('A', 'a').status).toBe(404);
    expect(errors.internal('A', 'a').status).toBe(500);
    expect(errors.unavailable('A', 'a').status).toBe(503);
    expect(errors.timeout('A', 'a').status).toBe(504);
  });

  it('badRequest keeps its metadata', () => {
    expect(errors.badRequest('INVALID_ID', 'bad', { field: 'aid' }).metadata).toEqual({ field: 'aid' });
  });

  it('keep the cause', () => {
    const cause = new Error('inner');
    expect(errors.unavailable('A', 'a', cause).cause).toBe(cause);
    expect(errors.timeout('A', 'a', cause).cause).toBe(cause);
  });
});

describe('asLabError', () => {
  it('passes a LabError through untouched', () => {
    const err = errors.notFound('VIDEO_NOT_FOUND', 'no');
    expect(asLabError(err)).toBe(err);
    expect(isLabError(err)).toBe(true);
    expect(isLabError(new Error('x'))).toBe(false);
  });

  it('hides unknown errors behind an opaque 500 that keeps the cause', () => {
    const cause = new TypeError('cannot read properties of undefined');
    const err = asLabError(cause);
    expect(err.toJSON()).toEqual({
      status: 500,
      reason: 'INTERNAL',
      message: 'internal error',
      metadata: {},
    });
    expect(err.cause).toBe(cause);
    expect(asLabError('a string').status).toBe(500);
    expect(asLabError(null).status).toBe(500);
  });

  it('keeps a 4xx status from a library error (status or statusCode) and its message', () => {
    const parse = Object.assign(new SyntaxError('Unexpected token'), { status: 400 });
    expect(asLabError(parse)).toMatchObject({ status: 400, message: 'Unexpected token' });
    expect(asLabError({ statusCode: 413, message: 'too large' })).toMatchObject({ status: 413 });
  });

  it('does not let a library error choose a 5xx or a non-error status', () => {
    expect(asLabError({ status: 502 }).status).toBe(500);
    expect(asLabError({ status: 302 }).status).toBe(500);
    expect(asLabError({ status: '400' }).status).toBe(500);
  });
});
