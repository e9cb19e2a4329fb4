/**
 * A resilient informer over client-node's `makeInformer`: client-node stops an informer on any
 * watch error but 410, so this wrapper restarts it with jittered exponential backoff, relists
 * periodically (watch stalls are silent), bounds the time a list may take, and hands
 * consumers keys only — the reconciler re-reads state (level-triggered).
 *
 * Each (re)start is a fresh "generation": a new client-node informer that lists then watches.
 * Its cache replaces the previous one only once its list completed; keys deleted in between
 * are found by comparing the two caches, and every key of the new list is delivered again.
 */
import {
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import { errorFields, type Logger } from '../../lib/logger.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

/** Receives the key (`namespace/name` or `name`) of an object that was added, changed or deleted. */
export type KeyHandler = (key: string) => void;

/** Options of a {@link ResilientInformer}. */
export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** Name for logs and metrics, e.g. `nodes`. */
  name: string;
  kubeConfig: KubeConfig;
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
  informer: Informer<T> & ObjectCache<T>;
  /** False once failed or replaced: its late events and errors are ignored. */
  active: boolean;
  synced: boolean;
  syncedAt: number;
  /** Keys seen while listing, delivered once this generation's cache is in place. */
  pendingKeys: Set<string>;
  /** Fails the generation if its list has not completed in time. */
  syncTimer: TimerHandle | undefined;
  /** Aborts the generation's list when it fails, times out or is retired. */
  abort: AbortController;
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
    return this.current?.informer.list() ?? [];
  }

  /** The cached object with this key. */
  get(key: string): T | undefined {
    const { namespace, name } = splitKey(key);
    return this.current?.informer.get(name, namespace);
  }

  /** Every cached key. */
  keys(): string[] {
    return this.list().map(objectKey);
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

  private onObject(gen: Generation<T>, obj: T): void {
    if (!gen.active) return;
    const key = objectKey(obj);
    if (gen.synced) this.emit(key);
    else gen.pendingKeys.add(key);
  }

  private startGeneration(why: 'initial' | 'restart' | 'relist'): void {
    const { kubeConfig, path, labelSelector } = this.options;
    const abort = new AbortController();
    const trim = this.options.trim;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const listed = await this.options.list(abort.signal);
      if (trim !== undefined) for (const item of listed.items) trim(item);
      return listed;
    };
    const informer =
      labelSelector === undefined ? makeInformer<T>(kubeConfig, path, list) : makeInformer<T>(kubeConfig, path, list, labelSelector);
    const gen: Generation<T> = {
      id: this.nextId++,
      informer,
      active: true,
      synced: false,
      syncedAt: 0,
      pendingKeys: new Set(),
      syncTimer: undefined,
      abort,
    };
    this.starting = gen;
    const onObject = (obj: T): void => this.onObject(gen, obj);
    // The watch's objects are cached as they arrive; this first handler trims the cached copy.
    const onChanged = trim === undefined ? onObject : (obj: T): void => (trim(obj), onObject(obj));
    informer.on('add', onChanged);
    informer.on('update', onChanged);
    informer.on('delete', onObject);
    informer.on('error', (err?: unknown) => this.fail(gen, err));
    this.logger?.debug('informer starting', { generation: gen.id, why });

    gen.syncTimer = this.clock.setTimeout(() => {
      gen.syncTimer = undefined;
      if (gen.active && !gen.synced) this.fail(gen, new Error(`list did not complete within ${this.syncTimeoutMs} ms`));
    }, this.syncTimeoutMs);
    informer.start().then(
      () => {
        this.clearSyncTimer(gen);
        this.onStarted(gen);
      },
      (err: unknown) => {
        this.clearSyncTimer(gen);
        this.fail(gen, err);
      },
    );
  }

  /** The generation's list completed and its watch started (or already failed). */
  private onStarted(gen: Generation<T>): void {
    if (!gen.active || !this.running) return;
    if (this.starting === gen) this.starting = undefined;
    const previous = this.current;
    gen.synced = true;
    gen.syncedAt = this.clock.now();
    this.current = gen;
    this.logger?.debug('informer synced', { generation: gen.id, objects: gen.informer.list().length });

    const keys = new Set(gen.pendingKeys);
    gen.pendingKeys.clear();
    if (previous !== undefined && previous !== gen) {
      // Objects that vanished while the previous generation was not watching.
      for (const obj of previous.informer.list()) {
        const key = objectKey(obj);
        if (this.get(key) === undefined) keys.add(key);
      }
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

  /** Stops a generation's watch; its later events and errors (including the abort) are ignored. */
  private async retire(gen: Generation<T>): Promise<void> {
    gen.active = false;
    this.clearSyncTimer(gen);
    gen.abort.abort(new Error(`informer ${this.options.name} generation ${gen.id} retired`));
    try {
      await gen.informer.stop();
    } catch (err) {
      this.logger?.debug('stopping an informer generation failed', { generation: gen.id, ...errorFields(err) });
    }
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
