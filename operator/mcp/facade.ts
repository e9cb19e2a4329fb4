/** The gpudiag MCP facade: its tools, prompts and resources, served for one caller. */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../lib/logger.js';
import type { KubeClient } from './kube.js';
import { prompts } from './prompts.js';
import { resources } from './resources.js';
import { createFacadeServer, type FacadeServer } from './sdk.js';
import type { FacadeSettings } from './tool.js';

export { DEFAULT_SETTINGS } from './settings.js';
import { tools } from './tools/index.js';

function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const VERSION = packageVersion();

/** A facade server acting as `kube`'s identity. */
export function newFacadeServer(kube: KubeClient, settings: FacadeSettings, logger: Logger, stopping?: AbortSignal): FacadeServer {
  return createFacadeServer({ name: 'gpudiag', version: VERSION, tools, prompts, resources, settings, kube, logger, ...(stopping !== undefined ? { stopping } : {}) });
}
