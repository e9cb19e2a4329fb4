/**
 * The resilient informer against the real API server, reached through a TCP proxy the test can
 * break (connections reset, new ones refused) or stall (established connections freeze while
 * new ones pass — a half-dead watch).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { ResilientInformer, stripCachedFields } from '../../operator/runtime/informer.js';
import { testCluster, useTestNamespace } from '../support/cluster.js';
import { FlakyProxy, kubeConfigVia } from '../support/tcp-proxy.js';

const ns = useTestNamespace('rt-informer');

async function eventually(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setUp(
  relistIntervalMs: number,
): Promise<{ informer: ResilientInformer<V1ConfigMap>; proxy: FlakyProxy; admin: CoreV1Api; keys: string[] }> {
  const proxy = new FlakyProxy(new URL(testCluster().server));
  const port = await proxy.start();
  cleanup.push(() => proxy.stop());
  const kc = kubeConfigVia(`https://127.0.0.1:${port}`);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = ns.name;
  const informer = new ResilientInformer<V1ConfigMap>({
    name: 'configmaps',
    kubeConfig: kc,
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    list: () => core.listNamespacedConfigMap({ namespace, labelSelector: 'suite=rt' }),
    labelSelector: 'suite=rt',
    relistIntervalMs,
    syncTimeoutMs: 3_000,
    backoff: { initialMs: 100, maxMs: 1_000 },
  });
  const keys: string[] = [];
  informer.onKey((k) => keys.push(k));
  cleanup.push(() => informer.stop());
  return { informer, proxy, admin: testCluster().admin().makeApiClient(CoreV1Api), keys };
}

const cm = (name: string): V1ConfigMap => ({ metadata: { name, labels: { suite: 'rt' } }, data: { k: 'v' } });

describe('ResilientInformer', () => {
  it('syncs, delivers keys, and recovers after the API server connection breaks', async () => {
    const { informer, proxy, admin, keys } = await setUp(0);
    const namespace = ns.name;
    await admin.createNamespacedConfigMap({ namespace, body: cm('a1') });
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    expect(informer.hasSynced).toBe(true);
    expect(informer.keys()).toEqual([`${namespace}/a1`]);
    await eventually('initial key', () => keys.includes(`${namespace}/a1`));

    await admin.createNamespacedConfigMap({ namespace, body: cm('a2') });
    await eventually('watched add', () => keys.includes(`${namespace}/a2`));
    expect(informer.get(`${namespace}/a2`)?.data).toEqual({ k: 'v' });

    // Outage: the watch is reset and every reconnect is refused.
    proxy.breakConnections();
    await eventually('watch lost', () => !informer.isWatching);
    await admin.createNamespacedConfigMap({ namespace, body: cm('a3') });
    await admin.deleteNamespacedConfigMap({ namespace, name: 'a1' });
    await new Promise((r) => setTimeout(r, 400)); // a few failed restarts
    expect(informer.get(`${namespace}/a1`)).toBeDefined(); // stale cache stays readable
    keys.length = 0;

    proxy.restore();
    await eventually('watching again', () => informer.isWatching && informer.get(`${namespace}/a3`) !== undefined);
    expect(informer.restarts).toBeGreaterThanOrEqual(1);
    // The change made during the outage arrives, and the deletion is noticed by comparing caches.
    await eventually('keys after recovery', () => keys.includes(`${namespace}/a3`) && keys.includes(`${namespace}/a1`));
    expect(informer.get(`${namespace}/a1`)).toBeUndefined();
    expect(informer.keys().sort()).toEqual([`${namespace}/a2`, `${namespace}/a3`]);

    // And the new watch delivers live changes.
    await admin.deleteNamespacedConfigMap({ namespace, name: 'a2' });
    await eventually('watched delete', () => informer.get(`${namespace}/a2`) === undefined);
    expect(keys).toContain(`${namespace}/a2`);
  });

  it('caches listed and watched objects trimmed (stripCachedFields: no managedFields)', async () => {
    const namespace = ns.name;
    const kc = testCluster().admin();
    const core = kc.makeApiClient(CoreV1Api);
    const informer = new ResilientInformer<V1ConfigMap>({
      name: 'configmaps-trimmed',
      kubeConfig: kc,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      list: () => core.listNamespacedConfigMap({ namespace, labelSelector: 'suite=trim' }),
      labelSelector: 'suite=trim',
      trim: stripCachedFields,
      relistIntervalMs: 0,
    });
    cleanup.push(() => informer.stop());
    const body = (name: string): V1ConfigMap => ({ metadata: { name, labels: { suite: 'trim' } }, data: { k: 'v' } });
    const created = await core.createNamespacedConfigMap({ namespace, body: body('t1') });
    // The API server records who set which field: that is what the cache must not hold.
    expect(created.metadata?.managedFields?.length).toBeGreaterThan(0);
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    await core.createNamespacedConfigMap({ namespace, body: body('t2') });
    await eventually('watched add', () => informer.get(`${namespace}/t2`) !== undefined);
    for (const name of ['t1', 't2']) {
      const cached = informer.get(`${namespace}/${name}`);
      expect(cached?.data).toEqual({ k: 'v' });
      expect(cached?.metadata?.labels).toEqual({ suite: 'trim' });
      expect(cached?.metadata?.managedFields).toBeUndefined();
    }
  });

  it('relists periodically: keys are delivered again and a stalled watch is caught', async () => {
    const { informer, proxy, admin, keys } = await setUp(1_000);
    const namespace = ns.name;
    await admin.createNamespacedConfigMap({ namespace, body: cm('b1') });
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    await eventually('initial key', () => keys.includes(`${namespace}/b1`));
    const count = (k: string): number => keys.filter((x) => x === `${namespace}/${k}`).length;

    // The watch connection freezes silently: no error, no events.
    proxy.stallEstablished();
    await admin.createNamespacedConfigMap({ namespace, body: cm('b2') });
    await eventually('relist found the object the stalled watch missed', () => informer.get(`${namespace}/b2`) !== undefined, 5_000);
    expect(count('b2')).toBeGreaterThanOrEqual(1);
    // The unchanged object was delivered again by the relist.
    await eventually('b1 re-delivered', () => count('b1') >= 2, 5_000);
  });

  it('a list that fails keeps it unsynced and retrying, not stopped', async () => {
    const { informer, proxy } = await setUp(0);
    proxy.breakConnections();
    informer.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(informer.hasSynced).toBe(false);
    await expect(informer.waitForSync(AbortSignal.timeout(50))).rejects.toThrow('did not sync');
    proxy.restore();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    expect(informer.restarts).toBeGreaterThanOrEqual(1);
  });
});
