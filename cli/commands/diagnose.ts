/**
 * `gpudiag diagnose [NODE...]`: creates a GPUDiagnostic with the user's kubeconfig (their RBAC
 * applies), follows it with a watch until it finishes, and prints the result worst first. The
 * exit code says healthy, unhealthy or could not diagnose (cli/diagnose/verdict.ts).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, GPU_DIAGNOSTICS, type GPUDiagnostic } from '../../api/index.js';
import { KubeRequestError, kubeRequest } from '../../lib/kube/raw-request.js';
import { quote } from '../../lib/text.js';
import { CHECKS } from '../registry.js';
// The MCP facade's label and path: one spelling of who created a GPUDiagnostic (here `cli`).
import { CREATED_BY_LABEL, diagnosticsPath } from '../../operator/mcp/diagnostics.js';
import { checkedDiagnostic, followDiagnostic, FollowError, type Followed } from '../diagnose/follow.js';
import { printable, progressText, renderResult } from '../diagnose/format.js';
import { DEFAULT_TTL, DEFAULT_WAIT, DiagnoseUsageError, parseDiagnoseArgs, type DiagnoseOptions } from '../diagnose/options.js';
import { EXIT, verdictOf } from '../diagnose/verdict.js';
import { ProgressLine, type MaybeTty } from '../progress-line.js';

const COMMAND = 'gpudiag diagnose';

export const DIAGNOSE_USAGE = `usage: ${COMMAND} [NODE...] [options]

Creates a GPUDiagnostic (docs/api.md) as you (your kubeconfig and RBAC), follows it until the
operator has finished it, and prints the result worst first. No NODE and no --selector: every
node with a gpudiag agent. On a terminal a progress line is drawn on stderr.

options:
  -l, --selector LABELS   nodes whose labels match, kubectl syntax: pool=training,zone in (a,b),!cordoned
  --checks a,b            checks to run: ${CHECKS.join(', ')} (default health,xid)
  --policy NAME           judge by this GPUHealthPolicy's thresholds, XID policy and scoring
  --xid-lookback DURATION how far back XID errors count (default 1h)
  --wait DURATION         follow at most this long (default ${DEFAULT_WAIT}); 0 creates it and prints its name only
  --ttl DURATION          the operator deletes the diagnostic this long after it finished (default ${DEFAULT_TTL})
  -o, --output FORMAT     table (default: node, GPU, status, score, worst finding, XIDs),
                          json or yaml (the object's status)
  --kubeconfig FILE       kubeconfig (default: $KUBECONFIG or ~/.kube/config)
  --context NAME          kubeconfig context (default: the current context)
  -n, --namespace NS      where the GPUDiagnostic is created (default: the context's namespace, else default)
  -h, --help              show this help
  --version               print gpudiag's version

exit status:
  ${EXIT.healthy}    healthy: every targeted node answered and every GPU is healthy
  ${EXIT.unhealthy}    unhealthy: a GPU or node is degraded or critical (even if other nodes did not answer)
  ${EXIT.undiagnosed}    could not diagnose: --wait expired, the diagnostic failed (e.g. no node matched,
       unknown --policy), a node did not answer (no agent, unreachable, timeout), or the API
       server refused or could not be reached
  ${EXIT.usage}   usage error: unknown flag or bad value (the message names the flag)
  ${EXIT.interrupted}  interrupted (Ctrl-C); the diagnostic keeps running
With --wait 0 the status is 0 once the diagnostic is created.
`;

/** Streams the command uses (the process's by default). */
export interface DiagnoseIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: MaybeTty;
}

class Refused extends Error {
  override readonly name = 'Refused';
}

/** Loads the kubeconfig as kubectl would: --kubeconfig, else $KUBECONFIG, else ~/.kube/config; then --context. */
async function loadKubeConfig(options: DiagnoseOptions): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig !== undefined) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new Refused(
      `cannot load the kubeconfig ${options.kubeconfig ?? '(default)'}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (options.context !== undefined) {
    if (kc.getContextObject(options.context) === null)
      throw new DiagnoseUsageError(`--context: the kubeconfig has no context ${quote(options.context)}`);
    kc.setCurrentContext(options.context);
  }
  if (kc.getCurrentCluster() === null) throw new Refused('the kubeconfig has no current cluster (pass --kubeconfig or --context)');
  return kc;
}

function namespaceOf(kc: KubeConfig, options: DiagnoseOptions): string {
  const contextNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return options.namespace ?? (contextNs !== undefined && contextNs !== '' ? contextNs : 'default');
}

function apiMessage(err: unknown): string {
  if (err instanceof KubeRequestError) return `HTTP ${err.statusCode} ${err.reason}: ${printable(err.message)}`;
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err instanceof Error ? err.message : String(err)}${cause}`;
}

async function create(kc: KubeConfig, namespace: string, options: DiagnoseOptions): Promise<GPUDiagnostic> {
  const body = {
    apiVersion: API_VERSION,
    kind: GPU_DIAGNOSTICS.kind,
    metadata: { generateName: 'cli-diagnose-', labels: { [CREATED_BY_LABEL]: 'cli' } },
    spec: options.spec,
  };
  let raw: unknown;
  try {
    raw = await kubeRequest<unknown>(kc, { method: 'POST', path: diagnosticsPath(namespace), body });
  } catch (err) {
    const hint = err instanceof KubeRequestError && err.statusCode === 404 ? ' (are the gpudiag CRDs installed?)' : '';
    throw new Refused(`cannot create a GPUDiagnostic in ${namespace}: ${apiMessage(err)}${hint}`);
  }
  return checkedDiagnostic(raw, 'the created GPUDiagnostic');
}

/** Follows until done, the wait expires or Ctrl-C; the progress line is drawn only on a terminal. */
async function follow(
  kc: KubeConfig,
  namespace: string,
  created: GPUDiagnostic,
  options: DiagnoseOptions,
  io: DiagnoseIo,
): Promise<Followed> {
  const progress = new ProgressLine(io.stderr);
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  progress.update(progressText(created.status), true);
  try {
    return await followDiagnostic({
      kc,
      namespace,
      created,
      deadlineMs: Date.now() + options.waitMs,
      signal: abort.signal,
      onUpdate: (d) => progress.update(() => progressText(d.status)),
    });
  } finally {
    process.off('SIGINT', onSigint);
    progress.clear();
  }
}

/** Runs `gpudiag diagnose`; resolves with the exit code. */
export async function runDiagnose(args: string[], io: DiagnoseIo = process): Promise<number> {
  const fail = (code: number, message: string): number => {
    io.stderr.write(`${COMMAND}: ${message}\n`);
    return code;
  };
  try {
    const options = parseDiagnoseArgs(args);
    if (options.help) {
      io.stdout.write(DIAGNOSE_USAGE);
      return EXIT.healthy;
    }
    const kc = await loadKubeConfig(options);
    const namespace = namespaceOf(kc, options);
    const created = await create(kc, namespace, options);
    const name = created.metadata?.name ?? '';
    if (options.waitMs === 0) {
      io.stdout.write(`${name}\n`);
      return EXIT.healthy;
    }
    const { diagnostic, end } = await follow(kc, namespace, created, options, io);
    io.stdout.write(renderResult(options.output, namespace, name, diagnostic.status));
    const where = `GPUDiagnostic ${namespace}/${name}`;
    if (end === 'aborted') return fail(EXIT.interrupted, `interrupted; ${where} keeps running (kubectl get gdiag -n ${namespace} ${name})`);
    if (end === 'deadline') {
      return fail(EXIT.undiagnosed, `${where} did not finish within --wait; it keeps running (kubectl get gdiag -n ${namespace} ${name})`);
    }
    const verdict = verdictOf(diagnostic.status, true);
    if (verdict.code !== EXIT.healthy) io.stderr.write(`${COMMAND}: ${printable(verdict.reason)}\n`);
    return verdict.code;
  } catch (err) {
    if (err instanceof DiagnoseUsageError) return fail(EXIT.usage, `${err.message}\nRun \`${COMMAND} --help\` for usage.`);
    if (err instanceof Refused || err instanceof FollowError) return fail(EXIT.undiagnosed, err.message);
    return fail(EXIT.undiagnosed, apiMessage(err));
  }
}
