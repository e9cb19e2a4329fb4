/** Reading GPUHealthPolicies (cluster-scoped) as the caller. */
import { GPU_HEALTH_POLICIES, type GPUHealthPolicy } from '../../api/index.js';
import { describeErrors, validateGPUHealthPolicy } from '../../api/validation.js';
import { ToolError, toToolError } from './errors.js';
import type { ToolContext } from './tool.js';

import { policiesPath } from '../../api/paths.js';

export { policiesPath };

function checked(raw: unknown, what: string): GPUHealthPolicy {
  const result = validateGPUHealthPolicy(raw);
  if (!result.ok) throw new ToolError(`${what} does not match its schema: ${describeErrors(result.errors)}`);
  return result.value;
}

/** One policy. */
export async function getPolicy(ctx: ToolContext, name: string): Promise<GPUHealthPolicy> {
  try {
    const raw = await ctx.kube.request<unknown>({ method: 'GET', path: policiesPath(name), signal: ctx.signal });
    return checked(raw, `GPUHealthPolicy ${name}`);
  } catch (err) {
    throw toToolError(err, { verb: 'get', resource: GPU_HEALTH_POLICIES.plural, name }, ctx.kube.identity);
  }
}

/** Every policy. */
export async function listPolicies(ctx: ToolContext): Promise<GPUHealthPolicy[]> {
  try {
    const list = await ctx.kube.request<{ items?: unknown[] }>({ method: 'GET', path: policiesPath(), signal: ctx.signal });
    return (list.items ?? []).map((item, i) => checked(item, `GPUHealthPolicy #${i}`));
  } catch (err) {
    throw toToolError(err, { verb: 'list', resource: GPU_HEALTH_POLICIES.plural }, ctx.kube.identity);
  }
}
