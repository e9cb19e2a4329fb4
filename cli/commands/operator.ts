/** `gpudiag operator`: run the operator until SIGTERM/SIGINT, then release the Lease and exit 0. */
import os from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { OPERATOR_USAGE, OperatorConfigError, parseOperatorConfig } from '../../operator/config.js';
import { Operator } from '../../operator/operator.js';
import { createLogger, errorFields } from '../../lib/logger.js';

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
  const kc = new KubeConfig();
  if (config.kubeconfig !== undefined) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();
  let operator: Operator;
  try {
    operator = await Operator.start(config, { kc, logger });
  } catch (err) {
    logger.error('operator failed to start', errorFields(err));
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info('stopping', { signal });
  await operator.stop();
  return 0;
}
