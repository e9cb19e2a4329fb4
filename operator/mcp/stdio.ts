/**
 * The stdio transport: `gpudiag mcp` run by an MCP client (Claude Desktop, Cursor, ...) with the
 * user's kubeconfig, so their own RBAC applies. stdout carries only the protocol; logs go to
 * stderr. It stops on stdin EOF, SIGTERM/SIGINT or an idle timeout, cancelling calls in flight
 * (their GPUDiagnostics are deleted), so no pending promise keeps the process alive.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { errorFields, type Logger } from '../../lib/logger.js';
import { newFacadeServer } from './facade.js';
import { KubeClient, type CallerIdentity } from './kube.js';
import type { FacadeSettings } from './tool.js';

/** Options of the stdio server. */
export interface StdioServerOptions {
  kc: KubeConfig;
  settings: FacadeSettings;
  logger: Logger;
  /** Stop after this long without a message from the client; 0 disables. */
  idleTimeoutMs: number;
}

/** Why the stdio server stopped. */
export type StdioStopReason = 'eof' | 'SIGTERM' | 'SIGINT' | 'idle' | 'closed';

/** Asks the API server who the kubeconfig authenticates as (SelfSubjectReview), falling back to the kubeconfig's user name. */
export async function whoAmI(kc: KubeConfig, logger: Logger): Promise<CallerIdentity> {
  const fallback: CallerIdentity = { user: kc.getCurrentUser()?.name ?? 'unknown', groups: [], impersonate: false };
  try {
    const review = await new KubeClient(kc, fallback).request<{ status?: { userInfo?: { username?: string; groups?: string[] } } }>({
      method: 'POST',
      path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      signal: AbortSignal.timeout(5_000),
    });
    const user = review.status?.userInfo?.username;
    if (user === undefined || user === '') return fallback;
    return { user, groups: review.status?.userInfo?.groups ?? [], impersonate: false };
  } catch (err) {
    logger.warn('cannot ask the API server who I am; using the kubeconfig user name', errorFields(err));
    return fallback;
  }
}

/** Serves MCP on stdin/stdout until EOF, a signal or the idle timeout; resolves with the reason. */
export async function serveStdio(options: StdioServerOptions): Promise<StdioStopReason> {
  const { logger } = options;
  const identity = await whoAmI(options.kc, logger);
  const server = newFacadeServer(new KubeClient(options.kc, identity), options.settings, logger);
  let resolveStop: (reason: StdioStopReason) => void = () => undefined;
  const stopped = new Promise<StdioStopReason>((resolve) => {
    resolveStop = resolve;
  });
  let idleTimer: NodeJS.Timeout | undefined;
  const touch = (): void => {
    if (options.idleTimeoutMs <= 0) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => resolveStop('idle'), options.idleTimeoutMs);
  };
  const onEnd = (): void => resolveStop('eof');
  const onTerm = (): void => resolveStop('SIGTERM');
  const onInt = (): void => resolveStop('SIGINT');
  process.stdin.on('end', onEnd);
  process.stdin.on('close', onEnd);
  process.stdin.on('data', touch);
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  server.onClose(() => resolveStop('closed'));
  touch();
  await server.connectStdio();
  logger.info('serving MCP on stdio', {
    caller: identity.user,
    namespace: options.settings.namespace,
    readOnly: options.settings.readOnly,
  });
  const reason = await stopped;
  logger.info('stopping', { reason });
  clearTimeout(idleTimer);
  process.stdin.off('end', onEnd);
  process.stdin.off('close', onEnd);
  process.stdin.off('data', touch);
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  // Closing aborts calls in flight; each deletes its GPUDiagnostic (bounded by a 10 s request timeout).
  await server.close().catch((err: unknown) => logger.warn('closing the MCP server failed', errorFields(err)));
  process.stdin.pause();
  return reason;
}
