import { describe, expect, it } from '@jest/globals';
import { KubeConfig, type KubernetesListObject, type V1ConfigMap } from '@kubernetes/client-node';
import { FakeClock, flushMicrotasks } from './fake-clock.js';
import { objectKey, ResilientInformer, splitKey, stripCachedFields } from './informer.js';

/** A kubeconfig whose server refuses connections (the list function is the test's own). */
function unreachable(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('objectKey / splitKey', () => {
  it.each([
    [{ metadata: { name: 'n', namespace: 'ns' } }, 'ns/n', { namespace: 'ns', name: 'n' }],
    [{ metadata: { name: 'gpu-node-1' } }, 'gpu-node-1', { name: 'gpu-node-1' }],
    [{ metadata: { name: 'n', namespace: '' } }, 'n', { name: 'n' }],
  ])('%j → %s', (obj, key, parts) => {
    expect(objectKey(obj)).toBe(key);
    expect(splitKey(key)).toEqual(parts);
  });
});

describe('ResilientInformer restarts', () => {
  it('restarts a failing list with exponential backoff up to the cap', async () => {
    const clock = new FakeClock();
    const listedAt: number[] = [];
    const informer = new ResilientInformer<V1ConfigMap>({
      name: 'test',
      kubeConfig: unreachable(),
      path: '/api/v1/configmaps',
      list: async (): Promise<KubernetesListObject<V1ConfigMap>> => {
        listedAt.push(clock.now());
        throw new Error('connection refused');
      },
      backoff: { initialMs: 100, maxMs: 1_000 },
      random: () => 0.5, // no jitter
      clock,
    });
    informer.start();
    await flushMicrotasks();
    for (let i = 0; i < 7; i++) await clock.advance(clock.nextTimerAt! - clock.now());
    const gaps = listedAt.slice(1).map((t, i) => t - (listedAt[i] ?? 0));
    expect(gaps).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    expect(informer.hasSynced).toBe(false);
    expect(informer.restarts).toBe(7);
    await informer.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it('jitters restart delays within ±jitter', async () => {
    const clock = new FakeClock();
    const listedAt: number[] = [];
    let r = 0;
    const informer = new ResilientInformer<V1ConfigMap>({
      name: 'test',
      kubeConfig: unreachable(),
      path: '/api/v1/configmaps',
      list: async (): Promise<KubernetesListObject<V1ConfigMap>> => {
        listedAt.push(clock.now());
        throw new Error('refused');
      },
      backoff: { initialMs: 1_000, maxMs: 1_000, jitter: 0.2 },
      random: () => [0, 0.999][r++ % 2] ?? 0,
      clock,
    });
    informer.start();
    await flushMicrotasks();
    for (let i = 0; i < 2; i++) await clock.advance(clock.nextTimerAt! - clock.now());
    expect(listedAt.slice(1).map((t, i) => t - (listedAt[i] ?? 0))).toEqual([800, 1_200]);
    await informer.stop();
  });

  it('treats a list that never completes as a failure after syncTimeoutMs', async () => {
    const clock = new FakeClock();
    let lists = 0;
    const informer = new ResilientInformer<V1ConfigMap>({
      name: 'test',
      kubeConfig: unreachable(),
      path: '/api/v1/configmaps',
      list: () => {
        lists++;
        return new Promise(() => undefined);
      },
      syncTimeoutMs: 5_000,
      backoff: { initialMs: 100, maxMs: 100 },
      random: () => 0.5,
      clock,
    });
    informer.start();
    await flushMicrotasks();
    expect(lists).toBe(1);
    await clock.advance(4_999);
    expect(lists).toBe(1);
    await clock.advance(1 + 100);
    expect(lists).toBe(2);
    await expect(informer.waitForSync(AbortSignal.timeout(10))).rejects.toThrow('informer test did not sync');
    await informer.stop();
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('stripCachedFields', () => {
  it('drops managedFields and a Node status images list, and keeps everything a consumer reads', () => {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'gpu-1', labels: { a: 'b' }, managedFields: [{ manager: 'kubelet', fieldsV1: { 'f:status': {} } }] },
      spec: { taints: [{ key: 'k', effect: 'NoSchedule' }] },
      status: { images: [{ names: ['nvcr.io/nvidia/pytorch:24.01'], sizeBytes: 1 }], capacity: { 'nvidia.com/gpu': '8' } },
    };
    stripCachedFields(node);
    expect(node).toEqual({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'gpu-1', labels: { a: 'b' } },
      spec: { taints: [{ key: 'k', effect: 'NoSchedule' }] },
      status: { capacity: { 'nvidia.com/gpu': '8' } },
    });
  });

  it('leaves an object without those fields as it was', () => {
    const pod = { metadata: { name: 'p', namespace: 'ns' }, status: { podIP: '10.0.0.1' } };
    stripCachedFields(pod);
    expect(pod).toEqual({ metadata: { name: 'p', namespace: 'ns' }, status: { podIP: '10.0.0.1' } });
  });
});
