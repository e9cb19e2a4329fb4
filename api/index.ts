/** The gpudiag.io/v1alpha1 API: identifiers shared by the operator, the CLI and the MCP facade. */
export const GROUP = 'gpudiag.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** Resource identifiers of the GPUDiagnostic kind (namespaced). */
export const GPU_DIAGNOSTICS = { group: GROUP, version: VERSION, plural: 'gpudiagnostics', kind: 'GPUDiagnostic' } as const;
/** Resource identifiers of the GPUHealthPolicy kind (cluster-scoped). */
export const GPU_HEALTH_POLICIES = { group: GROUP, version: VERSION, plural: 'gpuhealthpolicies', kind: 'GPUHealthPolicy' } as const;

export type * from './generated/types.js';
