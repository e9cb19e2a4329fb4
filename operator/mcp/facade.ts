/** The gpudiag MCP facade: its tools, prompts and resources, served for one caller. */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../lib/logger.js';
import type { KubeClient } from './kube.js';
import { prompts } from './prompts.js';
import { resources } from './resources.js';
import { createFacadeServer, type FacadeServer } from './sdk.js';
import type { FacadeSettings } from './tool.js';
import { tools } from './tools/index.js';

/** Defaults of the facade settings (flags override them). */
export const DEFAULT_SETTINGS: Omit<FacadeSettings, 'namespace'> = Object.freeze({
  agentNamespace: 'gpudiag-system',
  agentSelector: 'app.kubernetes.io/name=gpudiag,app.kubernetes.io/component=agent',
  ttlSecondsAfterFinished: 3600,
  pollIntervalMs: 500,
  defaultWaitSeconds: 120,
  readOnly: false,
});

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
export function newFacadeServer(kube: KubeClient, settings: FacadeSettings, logger: Logger): FacadeServer {
  return createFacadeServer({ name: 'gpudiag', version: VERSION, tools, prompts, resources, settings, kube, logger });
}
