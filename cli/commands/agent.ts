/** `gpudiag agent`: run the node agent until SIGTERM/SIGINT, then drain and exit 0. */
import { AGENT_USAGE, ConfigError, parseAgentConfig } from '../../agent/config.js';
import type { Agent } from '../../agent/agent.js';
import { createJsonLogger } from '../../lib/json-logger.js';
import { errorFields } from '../../lib/logger.js';
import { untilSignal } from '../signals.js';

/** Runs the agent; resolves with the exit code after a signal-triggered shutdown. */
export async function runAgent(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  let config;
  try {
    config = parseAgentConfig(args, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gpudiag agent: ${err.message}\n\n${AGENT_USAGE}`);
      return 2;
    }
    throw err;
  }
  const logger = createJsonLogger({ level: config.logLevel, defaultMeta: { component: 'agent' } });
  // Loaded only once the flags are valid: a bad flag is refused without loading NVML or the Kubernetes client.
  const [{ Agent }, { hardExit }] = await Promise.all([import('../../agent/agent.js'), import('../../lib/hard-exit.js')]);
  // Listening from the start: a SIGTERM during start-up stops the agent once it is up.
  const stopSignal = untilSignal();
  let agent: Agent;
  try {
    agent = await Agent.start(config, { logger });
  } catch (err) {
    stopSignal.cancel();
    logger.error('agent failed to start', errorFields(err));
    return 1;
  }
  const signal = await stopSignal.received;
  logger.info('stopping', { signal, graceMs: config.shutdownGraceMs });
  const { clean } = await agent.stop();
  // A blocked NVML call holds a libuv thread that process.exit would wait for forever.
  if (!clean) hardExit(0);
  return 0;
}
