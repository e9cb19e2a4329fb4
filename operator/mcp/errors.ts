/** Tool errors: what the caller (a model or a person) reads when a tool call cannot be served. */
import { KubeApiError, type CallerIdentity } from './kube.js';

/** A failure the caller can act on; its message becomes the tool's error text. */
export class ToolError extends Error {
  override readonly name = 'ToolError';
}

/** The action a Kubernetes call performed, for error messages. */
export interface KubeAction {
  verb: 'get' | 'list' | 'create' | 'delete' | 'watch';
  /** Plural resource, e.g. `gpudiagnostics`. */
  resource: string;
  /** Namespace of the call; undefined for cluster-scoped resources. */
  namespace?: string | undefined;
  /** Object name, for get/delete. */
  name?: string | undefined;
}

function where(action: KubeAction): string {
  return action.namespace === undefined ? 'at cluster scope' : `in namespace ${action.namespace}`;
}

/** Turns a Kubernetes API failure into a ToolError naming the caller, verb, resource and namespace. */
export function toToolError(err: unknown, action: KubeAction, identity: CallerIdentity): Error {
  if (err instanceof ToolError) return err;
  if (err instanceof KubeApiError) {
    const object = action.name === undefined ? action.resource : `${action.resource} ${action.name}`;
    switch (err.statusCode) {
      case 401:
        return new ToolError(`unauthorized: the API server did not accept the credentials of ${identity.user}`, { cause: err });
      case 403:
        return new ToolError(`forbidden: ${identity.user} cannot ${action.verb} ${action.resource} ${where(action)}`, { cause: err });
      case 404:
        return new ToolError(`not found: ${object} ${where(action)}`, { cause: err });
      case 409:
        return new ToolError(`conflict: ${object} ${where(action)} already exists or changed meanwhile`, { cause: err });
      case 422:
        return new ToolError(`invalid: the API server rejected ${object}: ${err.message}`, { cause: err });
      default:
        return new ToolError(
          `the API server answered HTTP ${err.statusCode} to ${action.verb} ${object} ${where(action)}: ${err.message}`,
          { cause: err },
        );
    }
  }
  if (err instanceof Error && err.name === 'AbortError') return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ToolError(`cannot ${action.verb} ${action.resource} ${where(action)}: ${message}`, { cause: err });
}
