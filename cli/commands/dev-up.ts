/** `gpudiag dev up`: run gpudiag locally in the foreground until Ctrl-C or SIGTERM. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { listScenarios } from '../../agent/fake-nvml/scenario.js';
import { startDevEnvironment } from '../../dev/dev-environment.js';

const help = `usage: gpudiag dev up [options]

Starts etcd and kube-apiserver on loopback, installs the gpudiag CRDs and RBAC,
starts a simulated fleet of GPU nodes (gpu-node-1..N, each a real agent on its own
127.1.x.y address with the fake NVML library) and the operator, applies
config/samples/, writes an admin kubeconfig and stays in the foreground.
Ctrl-C (SIGINT) or SIGTERM stops everything it started.

options:
  --nodes N         simulated GPU nodes (default 4, or one per --scenario; 0 starts no
                    fleet and no operator)
  --scenario NAME   a fake NVML scenario (agent/fake-nvml/scenarios/NAME.json) for the
                    nodes to cycle through instead of the default mix; repeat it for more,
                    e.g. --scenario nvlink5-storm --scenario nvswitch-sxid
  --real-node       also run a real node on this machine (root; dev/real-node): containerd,
                    kube-controller-manager, kube-scheduler, kube-proxy and a kubelet, the
                    images built (dev/images/build.sh) and loaded, and charts/gpudiag
                    installed with helm; the chart's operator diagnoses the real node and
                    the simulated fleet (--nodes, default 0 here). Ctrl-C removes the node's
                    containers, mounts, bridge and rules too. See docs/development.md.
  --state-dir DIR   where the kubeconfig, logs and data go (default: ./.gpudiag)
  --no-samples      do not apply config/samples/
  -h, --help        show this help
`;

/** Runs `gpudiag dev up`; resolves with the exit code once everything has stopped. */
export async function runDevUp(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        nodes: { type: 'string' },
        scenario: { type: 'string', multiple: true },
        'state-dir': { type: 'string' },
        'no-samples': { type: 'boolean' },
        'real-node': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`gpudiag dev up: ${(err as Error).message}\n\n${help}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(help);
    return 0;
  }
  const scenarios = values.scenario ?? [];
  const known = await listScenarios();
  const unknown = scenarios.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`gpudiag dev up: unknown scenario(s) ${unknown.join(', ')}; known: ${known.join(', ')}\n`);
    return 2;
  }
  const realNode = values['real-node'] === true;
  const nodes = Number(values.nodes ?? (scenarios.length > 0 ? String(scenarios.length) : realNode ? '0' : '4'));
  if (!Number.isInteger(nodes) || nodes < 0 || nodes > 2000) {
    process.stderr.write(`gpudiag dev up: --nodes must be an integer between 0 and 2000, got "${values.nodes ?? ''}"\n`);
    return 2;
  }
  const stateDir = path.resolve(values['state-dir'] ?? '.gpudiag');
  const log = (message: string): void => void process.stderr.write(`gpudiag: ${message}\n`);

  // Signals are handled from the first moment, so a Ctrl-C mid-start still stops what started.
  const abort = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      log(`received ${sig} again; still stopping`);
      return;
    }
    signalled = sig;
    log(`received ${sig}; stopping`);
    abort.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let env;
    try {
      env = await startDevEnvironment({
        stateDir,
        applySamples: values['no-samples'] !== true,
        nodes,
        scenarios,
        realNode,
        onProgress: log,
        signal: abort.signal,
      });
    } catch (err) {
      if (abort.signal.aborted) return 0;
      throw err;
    }
    const relative = path.relative(process.cwd(), env.kubeconfigPath);
    process.stdout.write(
      [
        '',
        `gpudiag is running (API server ${env.server}; ` +
          `${env.realNode !== undefined ? `real node ${env.realNode} with the chart installed, ` : ''}${env.fleetSize} simulated ` +
          `GPU node(s); logs in ${path.relative(process.cwd(), env.logDir) || env.logDir}).`,
        '',
        `  export KUBECONFIG=${relative.startsWith('..') ? env.kubeconfigPath : relative}`,
        '  kubectl get gpudiag -A',
        '',
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
    if (!abort.signal.aborted) await new Promise((resolve) => abort.signal.addEventListener('abort', resolve, { once: true }));
    await env.stop();
    log('stopped');
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
