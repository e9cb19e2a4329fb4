/** Test-only hooks exported by the fake NVML library (counters, state path), reached through koffi. */
import * as koffi from 'koffi';

type NativeFn = ReturnType<koffi.LibraryHandle['func']>;

/** Reads the fake library's counters and points it at a state file. */
export class FakeNvmlLibrary {
  private readonly fns: Record<string, NativeFn>;

  private constructor(readonly path: string) {
    const lib = koffi.load(path);
    this.fns = {
      setStatePath: lib.func('void gpudiagFakeSetStatePath(const char *path)'),
      initCount: lib.func('int gpudiagFakeInitCount(void)'),
      shutdownCount: lib.func('int gpudiagFakeShutdownCount(void)'),
      inflight: lib.func('int gpudiagFakeInflightCalls(void)'),
      maxInflight: lib.func('int gpudiagFakeMaxInflightCalls(void)'),
      shutdownWhileBusy: lib.func('int gpudiagFakeShutdownWhileBusyCount(void)'),
      reloads: lib.func('int gpudiagFakeReloadCount(void)'),
      callCount: lib.func('int gpudiagFakeCallCount(const char *fn)'),
      totalCalls: lib.func('int gpudiagFakeTotalCallCount(void)'),
      era: lib.func('const char *gpudiagFakeEra(void)'),
    };
  }

  /** Opens the fake library at `path` (the same file the binding loads, so they share state). */
  static open(path: string): FakeNvmlLibrary {
    return new FakeNvmlLibrary(path);
  }

  private int(name: string): number {
    const fn = this.fns[name];
    if (fn === undefined) throw new Error(`fake NVML hook ${name} is not declared`);
    return Number(fn());
  }

  /** Makes the next nvmlInit_v2 read `stateFile` (jest's copy of the environment does not reach C getenv). */
  setStatePath(stateFile: string): void {
    this.fns['setStatePath']?.(stateFile);
  }

  /** nvmlInit_v2 / nvmlInitWithFlags calls so far in this process. */
  initCount(): number {
    return this.int('initCount');
  }

  /** Successful nvmlShutdown calls so far. */
  shutdownCount(): number {
    return this.int('shutdownCount');
  }

  /** NVML calls executing right now. */
  inflightCalls(): number {
    return this.int('inflight');
  }

  /** Highest number of NVML calls that ever executed at once. */
  maxInflightCalls(): number {
    return this.int('maxInflight');
  }

  /** nvmlShutdown calls that ran while another call was still executing (must stay 0). */
  shutdownWhileBusyCount(): number {
    return this.int('shutdownWhileBusy');
  }

  /** Calls of one NVML function so far in this process (e.g. to see which of two fallbacks ran). */
  callCount(fn: string): number {
    return Number(this.fns['callCount']?.(fn) ?? 0);
  }

  /** Calls of every NVML function so far in this process. */
  totalCalls(): number {
    return this.int('totalCalls');
  }

  /** The driver era the library was built as. */
  era(): string {
    return String(this.fns['era']?.() ?? '');
  }

  /** State file reloads so far. */
  reloadCount(): number {
    return this.int('reloads');
  }
}
