/**
 * The kstatus invariant checker every reconciler test runs on every status it sees: the rules
 * Flux, Argo CD and `kubectl wait` rely on, plus the conventions of facts-k8s.md.
 */

/** The parts of an object the checker reads (any custom resource fits). */
export interface KstatusSubject {
  kind?: string | undefined;
  metadata?: { name?: string | undefined; namespace?: string | undefined; generation?: number | undefined } | undefined;
  status?:
    | {
        observedGeneration?: number | undefined;
        conditions?: ReadonlyArray<{ type?: unknown; status?: unknown; reason?: unknown; observedGeneration?: unknown }> | undefined;
      }
    | null
    | undefined;
}

const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const STATUSES = new Set(['True', 'False', 'Unknown']);

function describeObject(obj: KstatusSubject): string {
  const name = obj.metadata?.name ?? '<unnamed>';
  const ns = obj.metadata?.namespace;
  return `${obj.kind ?? 'object'} ${ns === undefined ? name : `${ns}/${name}`}`;
}

/** Lists every kstatus rule `obj` breaks (empty when it is consistent). */
export function kstatusViolations(obj: KstatusSubject): string[] {
  const violations: string[] = [];
  const generation = obj.metadata?.generation;
  const status = obj.status ?? undefined;
  const conditions = status?.conditions ?? [];
  const byType = new Map<string, (typeof conditions)[number]>();

  for (const [i, c] of conditions.entries()) {
    const type = typeof c.type === 'string' ? c.type : undefined;
    const label = type ?? `#${i}`;
    if (type === undefined) violations.push(`condition #${i} has no type`);
    else if (byType.has(type)) violations.push(`condition type ${type} appears more than once`);
    else byType.set(type, c);
    if (typeof c.status !== 'string' || !STATUSES.has(c.status))
      violations.push(`condition ${label} has status ${JSON.stringify(c.status)} (want True, False or Unknown)`);
    if (typeof c.reason !== 'string' || !REASON_PATTERN.test(c.reason))
      violations.push(`condition ${label} has reason ${JSON.stringify(c.reason)} not matching ${REASON_PATTERN.source}`);
    if (c.observedGeneration !== undefined) {
      if (typeof c.observedGeneration !== 'number') violations.push(`condition ${label} observedGeneration is not a number`);
      else if (generation !== undefined && c.observedGeneration > generation) {
        violations.push(`condition ${label} observedGeneration ${c.observedGeneration} > metadata.generation ${generation}`);
      }
    }
  }

  const observed = status?.observedGeneration;
  if (observed !== undefined && generation !== undefined && observed > generation) {
    violations.push(`status.observedGeneration ${observed} > metadata.generation ${generation}`);
  }

  const isTrue = (type: string): boolean => byType.get(type)?.status === 'True';
  if (isTrue('Reconciling') && isTrue('Stalled')) violations.push('Reconciling and Stalled are both True');
  if (isTrue('Ready') && (isTrue('Reconciling') || isTrue('Stalled'))) {
    violations.push(`Ready is True while ${isTrue('Reconciling') ? 'Reconciling' : 'Stalled'} is True`);
  }
  if (observed !== undefined && observed === generation && !isTrue('Reconciling') && !byType.has('Ready')) {
    violations.push('status.observedGeneration equals metadata.generation and Reconciling is not True, but Ready is absent');
  }
  return violations;
}

/** Throws an Error naming the object and every kstatus rule it violates. */
export function assertKstatus(obj: KstatusSubject): void {
  const violations = kstatusViolations(obj);
  if (violations.length > 0) throw new Error(`kstatus violated by ${describeObject(obj)}: ${violations.join('; ')}`);
}
