/** The gpudiag MCP facade: its tools, prompts and resources, served for one caller. */
import type { Logger } from '../../lib/logger.js';
import { packageVersion } from '../../lib/package-version.js';
import type { KubeClient } from './kube.js';
import { prompts } from './prompts.js';
import { resources } from './resources.js';
import { createFacadeServer, type FacadeServer } from './sdk.js';
import type { FacadeSettings } from './tool.js';

export { DEFAULT_SETTINGS } from './settings.js';
import { tools } from './tools/index.js';

const VERSION = packageVersion();

/** A facade server acting as `kube`'s identity. */
export function newFacadeServer(kube: KubeClient, settings: FacadeSettings, logger: Logger, stopping?: AbortSignal): FacadeServer {
  return createFacadeServer({
    name: 'gpudiag',
    version: VERSION,
    tools,
    prompts,
    resources,
    settings,
    kube,
    logger,
    ...(stopping !== undefined ? { stopping } : {}),
  });
}
