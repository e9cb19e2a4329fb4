import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { apiStatus, classifyError, isAlreadyExists, isConflict, isNotFound, StalledError, WaitingError } from './errors.js';

const status = (code: number, reason: string): string =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code, message: `${reason} happened` });

describe('classifyError', () => {
  it('stalled errors need a human: no retry', () => {
    const c = classifyError(new StalledError('NoMatchingNodes', 'no node matches'));
    expect(c).toMatchObject({ kind: 'stalled', reason: 'NoMatchingNodes', message: 'no node matches' });
  });
  it('waiting errors come back after their delay', () => {
    expect(classifyError(new WaitingError('WaitingForAgents', 'starting', 1500))).toMatchObject({ kind: 'waiting', retryAfterMs: 1500 });
  });
  it('finds a typed error through the cause chain', () => {
    const wrapped = new Error('reconcile ns/d failed', {
      cause: new Error('resolving policy', { cause: new StalledError('PolicyNotFound', 'missing') }),
    });
    expect(classifyError(wrapped).kind).toBe('stalled');
  });
  it.each([new Error('boom'), 'a string', undefined, new ApiException(500, 'x', status(500, 'InternalError'), {})])(
    'retries anything else (%p)',
    (err) => {
      expect(classifyError(err).kind).toBe('retry');
    },
  );
  it('refuses invalid reasons and delays', () => {
    expect(() => new StalledError('not valid', 'x')).toThrow('invalid condition reason');
    expect(() => new WaitingError('Ok', 'x', -1)).toThrow('retryAfterMs');
  });
  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new StalledError('Bad', 'x', { cause }).cause).toBe(cause);
  });
});

describe('API error helpers', () => {
  const conflict = new ApiException(409, 'conflict', status(409, 'Conflict'), {});
  const exists = new ApiException(409, 'exists', status(409, 'AlreadyExists'), {});
  const notFound = new ApiException(404, 'nf', status(404, 'NotFound'), {});

  it.each<[string, unknown, boolean, boolean, boolean]>([
    ['409 Conflict', conflict, true, false, false],
    ['409 AlreadyExists', exists, false, true, false],
    ['404', notFound, false, false, true],
    ['404 with a non-JSON body', new ApiException(404, 'nf', '<html>', {}), false, false, true],
    ['409 wrapped in a cause', new Error('writing status', { cause: conflict }), true, false, false],
    ['a KubeRequestError-like object', Object.assign(new Error('x'), { statusCode: 409, reason: 'AlreadyExists' }), false, true, false],
    ['a plain error', new Error('ECONNRESET'), false, false, false],
    ['a non-error', 42, false, false, false],
  ])('%s', (_name, err, c, e, n) => {
    expect(isConflict(err)).toBe(c);
    expect(isAlreadyExists(err)).toBe(e);
    expect(isNotFound(err)).toBe(n);
  });

  it('reads code, reason and message', () => {
    expect(apiStatus(exists)).toEqual({ code: 409, reason: 'AlreadyExists', message: 'AlreadyExists happened' });
    expect(apiStatus(new Error('x'))).toBeUndefined();
  });
});
