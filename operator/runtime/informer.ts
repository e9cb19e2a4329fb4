/**
 * A resilient informer: it lists a collection, then watches it from the list's resourceVersion
 * (re-watching from the last one seen when the server ends a watch, with bookmarks), restarts
 * with jittered exponential backoff after any failure (a watch error such as 410 Gone, a broken
 * or malformed stream, a failed list), relists periodically (watch stalls are silent), bounds
 * the time a list may take, and hands consumers keys only — the reconciler re-reads state
 * (level-triggered).
 *
 * Each (re)start is a fresh "generation" that lists then watches. Its cache replaces the
 * previous one only once its list completed; keys deleted in between are found by comparing the
 * two caches, and every key of the new list is delivered again.
 */
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { ApiClient } from '../../lib/kube/api-client.js';
import { KubeRequestError, type KubeTarget } from '../../lib/kube/raw-request.js';
import { errorFields, type Logger } from '../../lib/logger.js';
import { isRecord } from '../../lib/records.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

/** A watch lasts a random 5–10 minutes, as client-go's reflector does, so watches of many informers do not end together. */
const MIN_WATCH_SECONDS = 300;
/** A watch the server ends sooner than this after it opened counts as a failure (backoff), not as a normal end. */
const MIN_WATCH_MS = 1_000;

/** Receives the key (`namespace/name` or `name`) of an object that was added, changed or deleted. */
export type KeyHandler = (key: string) => void;

/** Options of a {@link ResilientInformer}. */
export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** Name for logs and metrics, e.g. `nodes`. */
  name: string;
  /** The API server and credentials the watch uses (a lib/kube connection or client-node's KubeConfig). */
  kubeConfig: KubeTarget;
  /** Watch path, e.g. `/api/v1/nodes` or `/apis/gpudiag.io/v1alpha1/namespaces/ns/gpudiagnostics`. */
  path: string;
  /**
   * Lists the same collection (with the same label selector) as `path` watches. `signal` aborts
   * when the list runs past syncTimeoutMs or the informer stops: no list stays pending.
   */
  list: (signal: AbortSignal) => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /**
   * Trims an object in place before it is cached (e.g. stripCachedFields): what no consumer
   * reads need not be held for every Node of a 5,000-node cluster.
   */
  trim?: (obj: T) => void;
  /** Full relist period to catch stalled watches (default 5 min; 0 disables). */
  relistIntervalMs?: number;
  /** A list that has not completed in this time counts as a failure (default 60 s). */
  syncTimeoutMs?: number;
  /** Restart backoff: first delay (default 500 ms), cap (default 60 s), jitter fraction (default 0.2). */
  backoff?: { initialMs?: number; maxMs?: number; jitter?: number };
  logger?: Logger;
  clock?: Clock;
  /** Random source for jitter, in [0, 1) (default Math.random). */
  random?: () => number;
}

interface Generation<T extends KubernetesObject> {
  id: number;
  /** The objects by key, as listed and then watched. */
  cache: Map<string, T>;
  /** False once failed or replaced: its late events and errors are ignored. */
  active: boolean;
  synced: boolean;
  syncedAt: number;
  /** Keys seen while listing, delivered once this generation's cache is in place. */
  pendingKeys: Set<string>;
  /** Fails the generation if its list has not completed in time. */
  syncTimer: TimerHandle | undefined;
  /** Aborts the generation's list and watch when it fails, times out or is retired. */
  abort: AbortController;
}

/** A watched object is untrusted input: it must at least have a name to be cached by. */
function isNamedObject(value: unknown): value is KubernetesObject {
  const metadata = isRecord(value) ? value['metadata'] : undefined;
  return isRecord(metadata) && typeof metadata['name'] === 'string' && metadata['name'] !== '';
}

/** The key of an object: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace;
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}

/** Splits a key from {@link objectKey} into namespace (possibly undefined) and name. */
export function splitKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** An informer that keeps itself running: restart with backoff, periodic relist, keys only. */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly handlers = new Set<KeyHandler>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly relistIntervalMs: number;
  private readonly syncTimeoutMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly jitter: number;
  private readonly logger: Logger | undefined;
  private readonly api: ApiClient;

  /** The generation whose cache is served (the last one that completed its list). */
  private current: Generation<T> | undefined;
  /** A generation that is listing. */
  private starting: Generation<T> | undefined;
  private nextId = 1;
  private attempts = 0;
  private restartTimer: TimerHandle | undefined;
  private relistTimer: TimerHandle | undefined;
  private running = false;
  private syncWaiters: (() => void)[] = [];
  private restartCount = 0;

  constructor(private readonly options: ResilientInformerOptions<T>) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.relistIntervalMs = options.relistIntervalMs ?? 5 * 60_000;
    this.syncTimeoutMs = options.syncTimeoutMs ?? 60_000;
    this.initialBackoffMs = options.backoff?.initialMs ?? 500;
    this.maxBackoffMs = options.backoff?.maxMs ?? 60_000;
    this.jitter = options.backoff?.jitter ?? 0.2;
    this.logger = options.logger?.child({ informer: options.name });
    this.api = new ApiClient(options.kubeConfig);
  }

  /** True once a first list completed (the cache can be trusted). */
  get hasSynced(): boolean {
    return this.current !== undefined;
  }

  /** True while the served generation is watching (false between a failure and its restart). */
  get isWatching(): boolean {
    return this.current?.active === true;
  }

  /** Restarts after failures so far (metric). */
  get restarts(): number {
    return this.restartCount;
  }

  /** Registers a key handler; returns a function that removes it. */
  onKey(handler: KeyHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Starts listing and watching; returns at once (see {@link waitForSync}). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.startGeneration('initial');
  }

  /** Resolves once the first list completed; rejects if `signal` aborts first. */
  async waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.hasSynced) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(new Error(`informer ${this.options.name} did not sync`, { cause: signal?.reason }));
      if (signal?.aborted === true) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Every cached object. */
  list(): readonly T[] {
    return this.current === undefined ? [] : [...this.current.cache.values()];
  }

  /** The cached object with this key. */
  get(key: string): T | undefined {
    return this.current?.cache.get(key);
  }

  /** Every cached key. */
  keys(): string[] {
    return this.current === undefined ? [] : [...this.current.cache.keys()];
  }

  /** Forces a full relist now (also done every relistIntervalMs). */
  relist(): void {
    if (!this.running || this.starting !== undefined) return;
    this.startGeneration('relist');
  }

  /** Stops watching and cancels timers; the last cache stays readable. */
  async stop(): Promise<void> {
    this.running = false;
    this.clearTimer('restart');
    this.clearTimer('relist');
    const gens = [this.starting, this.current].filter((g): g is Generation<T> => g !== undefined);
    this.starting = undefined;
    await Promise.all(gens.map((g) => this.retire(g)));
  }

  private emit(key: string): void {
    for (const handler of this.handlers) {
      try {
        handler(key);
      } catch (err) {
        this.logger?.error('key handler threw', { key, ...errorFields(err) });
      }
    }
  }

  private onObject(gen: Generation<T>, key: string): void {
    if (!gen.active) return;
    if (gen.synced) this.emit(key);
    else gen.pendingKeys.add(key);
  }

  private startGeneration(why: 'initial' | 'restart' | 'relist'): void {
    const gen: Generation<T> = {
      id: this.nextId++,
      cache: new Map(),
      active: true,
      synced: false,
      syncedAt: 0,
      pendingKeys: new Set(),
      syncTimer: undefined,
      abort: new AbortController(),
    };
    this.starting = gen;
    this.logger?.debug('informer starting', { generation: gen.id, why });
    gen.syncTimer = this.clock.setTimeout(() => {
      gen.syncTimer = undefined;
      if (gen.active && !gen.synced) this.fail(gen, new Error(`list did not complete within ${this.syncTimeoutMs} ms`));
    }, this.syncTimeoutMs);
    this.listAndWatch(gen).catch((err: unknown) => {
      this.clearSyncTimer(gen);
      this.fail(gen, err);
    });
  }

  /** Lists into the generation's cache, serves it, then watches until the generation ends (or throws why it failed). */
  private async listAndWatch(gen: Generation<T>): Promise<void> {
    const listed = await this.options.list(gen.abort.signal);
    if (!gen.active) return;
    const trim = this.options.trim;
    for (const item of listed.items) {
      trim?.(item);
      const key = objectKey(item);
      gen.cache.set(key, item);
      gen.pendingKeys.add(key);
    }
    this.clearSyncTimer(gen);
    this.onStarted(gen);
    let resourceVersion = listed.metadata?.resourceVersion;
    const { path, labelSelector } = this.options;
    while (gen.active) {
      const openedAt = this.clock.now();
      const timeoutSeconds = Math.floor(MIN_WATCH_SECONDS * (1 + this.random()));
      const events = this.api.watch({
        path,
        query: { labelSelector, resourceVersion, allowWatchBookmarks: 'true' },
        timeoutSeconds,
        signal: gen.abort.signal,
      });
      let seen = 0;
      for await (const event of events) {
        if (!gen.active) return;
        seen++;
        if (event.type === 'ERROR') throw new KubeRequestError(event.code ?? 0, event.reason, `the watch ended: ${event.message}`);
        if (event.type === 'INVALID') throw new Error(`the watch stream is broken: ${event.problem}`);
        if (event.type === 'BOOKMARK') {
          resourceVersion = event.resourceVersion ?? resourceVersion;
          continue;
        }
        if (!isNamedObject(event.object)) throw new Error(`the watch stream is broken: a ${event.type} event without metadata.name`);
        const obj = event.object as T;
        resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
        const key = objectKey(obj);
        if (event.type === 'DELETED') gen.cache.delete(key);
        else {
          trim?.(obj);
          gen.cache.set(key, obj);
        }
        this.onObject(gen, key);
      }
      if (seen === 0 && this.clock.now() - openedAt < MIN_WATCH_MS) throw new Error('the API server ended the watch at once');
    }
  }

  /** The generation's list completed: its cache is served from now on. */
  private onStarted(gen: Generation<T>): void {
    if (!gen.active || !this.running) return;
    if (this.starting === gen) this.starting = undefined;
    const previous = this.current;
    gen.synced = true;
    gen.syncedAt = this.clock.now();
    this.current = gen;
    this.logger?.debug('informer synced', { generation: gen.id, objects: gen.cache.size });

    const keys = new Set(gen.pendingKeys);
    gen.pendingKeys.clear();
    if (previous !== undefined && previous !== gen) {
      // Objects that vanished while the previous generation was not watching.
      for (const key of previous.cache.keys()) if (!gen.cache.has(key)) keys.add(key);
      void this.retire(previous);
    }
    for (const key of keys) this.emit(key);

    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w();
    this.scheduleRelist();
  }

  /** A generation failed (watch error, list error, list timeout): retire it and restart later. */
  private fail(gen: Generation<T>, err: unknown): void {
    if (!gen.active) return;
    this.logger?.warn('informer failed, restarting', { generation: gen.id, ...errorFields(err) });
    if (this.starting === gen) this.starting = undefined;
    // Keep `current` (stale but readable) until a new generation has listed; retire it so
    // its watch no longer feeds events.
    void this.retire(gen);
    // A generation that stayed healthy for a while earns a fresh backoff.
    if (gen.synced && this.clock.now() - gen.syncedAt > this.maxBackoffMs) this.attempts = 0;
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (!this.running || this.restartTimer !== undefined || this.starting !== undefined) return;
    const base = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** this.attempts);
    const delay = Math.round(base * (1 - this.jitter + 2 * this.jitter * this.random()));
    this.attempts++;
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.running || this.starting !== undefined) return;
      this.restartCount++;
      this.startGeneration('restart');
    }, delay);
  }

  private scheduleRelist(): void {
    this.clearTimer('relist');
    if (!this.running || this.relistIntervalMs <= 0) return;
    this.relistTimer = this.clock.setTimeout(() => {
      this.relistTimer = undefined;
      this.relist();
    }, this.relistIntervalMs);
  }

  private clearTimer(which: 'restart' | 'relist'): void {
    const handle = which === 'restart' ? this.restartTimer : this.relistTimer;
    if (handle !== undefined) this.clock.clearTimeout(handle);
    if (which === 'restart') this.restartTimer = undefined;
    else this.relistTimer = undefined;
  }

  private clearSyncTimer(gen: Generation<T>): void {
    if (gen.syncTimer !== undefined) this.clock.clearTimeout(gen.syncTimer);
    gen.syncTimer = undefined;
  }

  /** Stops a generation's list and watch; its later events and errors (including the abort) are ignored. */
  private async retire(gen: Generation<T>): Promise<void> {
    gen.active = false;
    this.clearSyncTimer(gen);
    gen.abort.abort(new Error(`informer ${this.options.name} generation ${gen.id} retired`));
  }
}

/**
 * Drops what the operator never reads from a cached object: `metadata.managedFields` (server-side
 * apply bookkeeping, often a third of an object) and a Node's `status.images` (every image on the
 * node: tens of KiB on a busy GPU node).
 */
export function stripCachedFields(obj: KubernetesObject & { status?: unknown }): void {
  if (obj.metadata !== undefined) delete obj.metadata.managedFields;
  const status = obj.status as { images?: unknown } | undefined;
  if (status !== undefined && typeof status === 'object') delete status.images;
}
