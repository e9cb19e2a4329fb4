import { describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector, leaderIdentity, type LeaderElectionOptions } from './leader-election.js';

const kubeConfig = new KubeConfig();
kubeConfig.loadFromOptions({
  clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
  users: [{ name: 'u' }],
  contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
  currentContext: 'x',
});
const base: LeaderElectionOptions = { kubeConfig, namespace: 'ns', name: 'lease', onStartedLeading: () => undefined };

describe('LeaderElector configuration', () => {
  it('defaults to client-go timings and a unique identity', () => {
    const a = new LeaderElector(base);
    const b = new LeaderElector(base);
    expect(a.identity).not.toBe(b.identity);
    expect(a.isLeader).toBe(false);
  });

  it.each<[string, Partial<LeaderElectionOptions>, string]>([
    ['a renew deadline as long as the lease', { leaseDurationSeconds: 2, renewDeadlineMs: 2_000, retryPeriodMs: 500 }, 'renewDeadlineMs'],
    [
      'a retry period as long as the renew deadline',
      { leaseDurationSeconds: 2, renewDeadlineMs: 1_000, retryPeriodMs: 1_000 },
      'retryPeriodMs',
    ],
    ['a fractional lease duration', { leaseDurationSeconds: 1.5 }, 'leaseDurationSeconds'],
    ['a zero lease duration', { leaseDurationSeconds: 0 }, 'leaseDurationSeconds'],
  ])('rejects %s', (_name, overrides, message) => {
    expect(() => new LeaderElector({ ...base, ...overrides })).toThrow(message);
  });

  it('leaderIdentity is the pod name plus a random suffix', () => {
    expect(leaderIdentity('gpudiag-operator-7d9f')).toMatch(/^gpudiag-operator-7d9f_[0-9a-f]{8}$/);
    expect(leaderIdentity('p')).not.toBe(leaderIdentity('p'));
  });

  it('stop() on an elector that never started resolves without I/O', async () => {
    await expect(new LeaderElector(base).stop()).resolves.toBeUndefined();
  });
});
