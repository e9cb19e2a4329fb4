/** `gpudiag agent`: run the node agent until SIGTERM/SIGINT, then drain and exit 0. */
import { AGENT_USAGE, ConfigError, parseAgentConfig } from '../../agent/config.js';
import { Agent } from '../../agent/agent.js';
import { createLogger, errorFields } from '../../lib/logger.js';

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
  const logger = createLogger({ level: config.logLevel, defaultMeta: { component: 'agent' } });
  let agent: Agent;
  try {
    agent = await Agent.start(config, { logger });
  } catch (err) {
    logger.error('agent failed to start', errorFields(err));
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info('stopping', { signal });
  await agent.stop();
  return 0;
}
