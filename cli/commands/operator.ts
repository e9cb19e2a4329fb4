/** `gpudiag operator`: run the operator until SIGTERM/SIGINT, then release the Lease and exit 0. */
import os from 'node:os';
import type { KubeTarget } from '../../lib/kube/raw-request.js';
import { OPERATOR_USAGE, OperatorConfigError, parseOperatorConfig } from '../../operator/config.js';
import type { Operator } from '../../operator/operator.js';
import { createLogger, errorFields, type Logger } from '../../lib/logger.js';
import { settlesWithin } from '../../lib/settle.js';
import { untilSignal } from '../signals.js';

/**
 * The API server connection: the in-cluster one (mounted CA and rotating token), or the
 * kubeconfig given, read by lib/kube without client-node. A kubeconfig that needs what only
 * client-node implements (an exec or auth-provider plugin, a proxy) is loaded by client-node
 * instead, at the cost of its memory (~74 MiB); throws naming the source.
 */
export async function loadConnection(file: string | undefined, logger: Logger): Promise<KubeTarget> {
  const [{ inClusterConnection }, { inClusterServiceFromEnv }, { loadKubeconfig, UnsupportedKubeconfigError }] = await Promise.all([
    import('../../lib/kube/connection.js'),
    import('../../lib/kube/in-cluster-service.js'),
    import('../../lib/kube/kubeconfig.js'),
  ]);
  try {
    if (file === undefined) return await inClusterConnection({ service: inClusterServiceFromEnv(process.env) });
    return await loadKubeconfig(file);
  } catch (err) {
    if (file === undefined || !(err instanceof UnsupportedKubeconfigError)) {
      throw new Error(`cannot load the kubeconfig ${file ?? '(in-cluster)'}`, { cause: err });
    }
    logger.info('the kubeconfig needs client-node; loading it', { kubeconfig: file, reason: err.message });
  }
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new Error(`cannot load the kubeconfig ${file}`, { cause: err });
  }
  return kc;
}

/** Runs the operator; resolves with the exit code after a signal-triggered shutdown. */
export async function runOperator(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(OPERATOR_USAGE);
    return 0;
  }
  let config;
  try {
    config = parseOperatorConfig(args, process.env, os.hostname());
  } catch (err) {
    if (err instanceof OperatorConfigError) {
      process.stderr.write(`gpudiag operator: ${err.message}\n\n${OPERATOR_USAGE}`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, defaultMeta: { component: 'operator' } });
  // Loaded only once the flags are valid: a bad flag is refused without loading the Kubernetes client.
  const [{ Operator }, { hardExit }] = await Promise.all([import('../../operator/operator.js'), import('../../lib/hard-exit.js')]);
  const stopSignal = untilSignal();
  let operator: Operator;
  try {
    operator = await Operator.start(config, { kc: await loadConnection(config.kubeconfig, logger), logger });
  } catch (err) {
    stopSignal.cancel();
    logger.error('operator failed to start', errorFields(err));
    return 1;
  }
  const signal = await stopSignal.received;
  logger.info('stopping', { signal, graceMs: config.shutdownGraceMs });
  let stopped: boolean;
  try {
    stopped = await settlesWithin(operator.stop(), config.shutdownGraceMs);
  } catch (err) {
    logger.error('stopping the operator failed', errorFields(err));
    return 1;
  }
  if (!stopped) {
    logger.error('the operator did not stop within the shutdown grace period; exiting anyway', { graceMs: config.shutdownGraceMs });
    hardExit(0);
  }
  return 0;
}
