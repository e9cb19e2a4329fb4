/** Defaults of the facade settings (a module of its own: `gpudiag mcp` parses flags without loading the SDK). */
import type { FacadeSettings } from './tool.js';

/** Defaults of the facade settings (flags override them). */
export const DEFAULT_SETTINGS: Omit<FacadeSettings, 'namespace'> = Object.freeze({
  agentNamespace: 'gpudiag-system',
  agentSelector: 'app.kubernetes.io/name=gpudiag,app.kubernetes.io/component=agent',
  ttlSecondsAfterFinished: 3600,
  pollIntervalMs: 500,
  defaultWaitSeconds: 120,
  readOnly: false,
});
