/** `gpudiag operator`: run the operator until SIGTERM/SIGINT, then release the Lease and exit 0. */
import os from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { OPERATOR_USAGE, OperatorConfigError, parseOperatorConfig } from '../../operator/config.js';
import type { Operator } from '../../operator/operator.js';
import { createLogger, errorFields } from '../../lib/logger.js';
import { settlesWithin } from '../../lib/settle.js';
import { untilSignal } from '../signals.js';

/** Loads the kubeconfig given, else the in-cluster configuration; throws naming the source. */
async function loadKubeConfig(file: string | undefined): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (file !== undefined) kc.loadFromFile(file);
    else kc.loadFromCluster();
  } catch (err) {
    throw new Error(`cannot load the kubeconfig ${file ?? '(in-cluster)'}`, { cause: err });
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
    operator = await Operator.start(config, { kc: await loadKubeConfig(config.kubeconfig), logger });
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
