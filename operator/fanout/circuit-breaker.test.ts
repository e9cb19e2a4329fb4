import { describe, expect, it } from '@jest/globals';
import { breakerKey, CircuitBreaker, type CircuitState } from './circuit-breaker.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

type Step = ['fail' | 'succeed' | 'release' | 'acquire', boolean | undefined] | ['wait', number] | ['state', CircuitState];

describe('CircuitBreaker', () => {
  const key = breakerKey('gpu-node-1', '10.0.0.1');
  const scenarios: [string, Step[]][] = [
    [
      'stays closed below the threshold',
      [
        ['fail', undefined],
        ['fail', undefined],
        ['state', 'closed'],
        ['acquire', true],
      ],
    ],
    [
      'opens at the threshold and refuses',
      [
        ['fail', undefined],
        ['fail', undefined],
        ['fail', undefined],
        ['state', 'open'],
        ['acquire', false],
      ],
    ],
    [
      'a success resets the consecutive count',
      [
        ['fail', undefined],
        ['fail', undefined],
        ['succeed', undefined],
        ['fail', undefined],
        ['fail', undefined],
        ['state', 'closed'],
      ],
    ],
    [
      'half-open after the cool-down lets exactly one probe through',
      [
        ['fail', undefined],
        ['fail', undefined],
        ['fail', undefined],
        ['wait', 29_999],
        ['acquire', false],
        ['wait', 1],
        ['state', 'half-open'],
        ['acquire', true],
        ['acquire', false],
        ['state', 'half-open'],
      ],
    ],
    [
      'a successful probe closes the circuit',
      [
        ['fail', undefined],
        ['fail', undefined],
        ['fail', undefined],
        ['wait', 30_000],
        ['acquire', true],
        ['succeed', undefined],
        ['state', 'closed'],
        ['acquire', true],
        ['acquire', true],
      ],
    ],
    [
      'a failed probe re-opens it for a fresh cool-down',
      [
        ['fail', undefined],
        ['fail', undefined],
        ['fail', undefined],
        ['wait', 30_000],
        ['acquire', true],
        ['fail', undefined],
        ['state', 'open'],
        ['wait', 29_000],
        ['acquire', false],
        ['wait', 1_000],
        ['acquire', true],
      ],
    ],
    [
      'a released probe lets the next caller probe',
      [
        ['fail', undefined],
        ['fail', undefined],
        ['fail', undefined],
        ['wait', 30_000],
        ['acquire', true],
        ['release', undefined],
        ['acquire', true],
        ['acquire', false],
      ],
    ],
  ];

  it.each(scenarios)('%s', (_name, steps) => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 30_000, now: c.now });
    breaker.acquire(key);
    steps.forEach(([op, arg], i) => {
      const where = `step ${i} (${op})`;
      switch (op) {
        case 'fail':
          breaker.recordFailure(key);
          break;
        case 'succeed':
          breaker.recordSuccess(key);
          break;
        case 'release':
          breaker.release(key);
          break;
        case 'wait':
          c.advance(arg);
          break;
        case 'acquire':
          expect([where, breaker.acquire(key).allowed]).toEqual([where, arg]);
          break;
        case 'state':
          expect([where, breaker.state(key)]).toEqual([where, arg]);
          break;
      }
    });
  });

  it('says how many failures opened it and when the next probe goes', () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, coolDownMs: 30_000, now: c.now });
    breaker.recordFailure(key);
    breaker.recordFailure(key);
    c.advance(10_500);
    expect(breaker.acquire(key)).toEqual({
      allowed: false,
      state: 'open',
      failures: 2,
      retryInMs: 19_500,
      message: 'circuit open after 2 failures; next probe in 20s',
    });
  });

  it('keeps agents apart and counts circuits by state', () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1_000, now: c.now });
    breaker.acquire(breakerKey('a', '10.0.0.1'));
    breaker.recordFailure(breakerKey('b', '10.0.0.2'));
    breaker.recordFailure(breakerKey('c', '10.0.0.3'));
    c.advance(1_000);
    breaker.recordFailure(breakerKey('d', '10.0.0.4'));
    // A new Pod on the same node gets its own, closed circuit.
    expect(breaker.state(breakerKey('b', '10.0.0.99'))).toBe('closed');
    expect(breaker.snapshot()).toEqual({ closed: 1, open: 1, halfOpen: 2 });
  });

  it('forgets idle closed circuits but never open ones', () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1_000_000, idleForgetMs: 60_000, now: c.now });
    breaker.acquire('idle');
    breaker.recordFailure('broken');
    c.advance(60_001);
    expect(breaker.snapshot()).toEqual({ closed: 0, open: 1, halfOpen: 0 });
  });

  it('rejects nonsense settings', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow('failureThreshold must be a positive integer');
    expect(() => new CircuitBreaker({ coolDownMs: -1 })).toThrow('coolDownMs must be a non-negative number');
  });
});
