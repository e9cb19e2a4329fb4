/** The pure parts of the pod tools: the pod's lifetime, which GPU an XID names, and whether it fell in the lifetime. */
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from '@jest/globals';
import { END_GRACE_MS, inLifetime, podLifetime, xidGpu } from './pods.js';

const gpus = [
  { index: 0, uuid: 'GPU-0', pciBusId: '00000000:18:00.0' },
  { index: 3, uuid: 'GPU-3', pciBusId: '0000:5d:00' },
];

/** A pod as the API server's JSON has it (times are strings, whatever client-node's types say). */
function pod(json: unknown): V1Pod {
  return json as V1Pod;
}

describe('podLifetime', () => {
  it('starts at status.startTime, else metadata.creationTimestamp; a running pod has no end', () => {
    expect(
      podLifetime(
        pod({ metadata: { creationTimestamp: '2026-01-01T09:00:00Z' }, status: { phase: 'Running', startTime: '2026-01-01T09:00:05Z' } }),
      ),
    ).toEqual({ start: new Date('2026-01-01T09:00:05Z'), end: undefined });
    expect(podLifetime(pod({ metadata: { creationTimestamp: '2026-01-01T09:00:00Z' }, status: { phase: 'Pending' } }))).toEqual({
      start: new Date('2026-01-01T09:00:00Z'),
      end: undefined,
    });
  });

  it('a Failed pod ends when its last container finished', () => {
    const failed = pod({
      metadata: { creationTimestamp: '2026-01-01T09:00:00Z' },
      status: {
        phase: 'Failed',
        initContainerStatuses: [{ name: 'init', state: { terminated: { exitCode: 0, finishedAt: '2026-01-01T09:01:00Z' } } }],
        containerStatuses: [{ name: 'main', state: { terminated: { exitCode: 1, finishedAt: '2026-01-01T10:00:00Z' } } }],
      },
    });
    expect(podLifetime(failed).end).toEqual(new Date('2026-01-01T10:00:00Z'));
  });
});

describe('xidGpu', () => {
  it('matches by UUID, else by PCI bus id in any of its spellings; else no GPU', () => {
    expect(xidGpu({ gpu: 'GPU-3' }, gpus)).toBe(3);
    expect(xidGpu({ pciBusId: '0000:18:00' }, gpus)).toBe(0);
    expect(xidGpu({ gpu: 'GPU-unknown', pciBusId: '0000:5D:00.0' }, gpus)).toBe(3);
    expect(xidGpu({ pciBusId: '0000:99:00' }, gpus)).toBeUndefined();
    expect(xidGpu({}, gpus)).toBeUndefined();
  });
});

describe('inLifetime', () => {
  const start = new Date('2026-01-01T09:00:00Z');
  const end = new Date('2026-01-01T10:00:00Z');
  it.each<[string, string | undefined, boolean]>([
    ['before the pod started', '2026-01-01T08:59:59Z', false],
    ['at the start', '2026-01-01T09:00:00Z', true],
    ['while it ran', '2026-01-01T09:30:00Z', true],
    ['just after it ended (clock skew)', new Date(end.getTime() + END_GRACE_MS).toISOString(), true],
    ['well after it ended', new Date(end.getTime() + END_GRACE_MS + 1000).toISOString(), false],
    ['without a time', undefined, false],
  ])('%s → %s', (_name, lastSeen, expected) => {
    expect(inLifetime({ lastSeen }, start, end)).toBe(expected);
  });
});
