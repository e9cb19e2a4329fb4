/** Where a pod reaches the API server, read from the environment the kubelet sets (a module of its own: cheap to load). */
import { quote } from '../text.js';

/**
 * The `kubernetes` Service's address from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT
 * (undefined outside a pod); throws naming the variable when one holds something else.
 */
export function inClusterServiceFromEnv(env: NodeJS.ProcessEnv): { host: string; port: string } | undefined {
  const host = env['KUBERNETES_SERVICE_HOST'] ?? '';
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '';
  if (host === '' || port === '') return undefined;
  if (!/^[0-9A-Za-z.:-]{1,253}$/.test(host)) {
    throw new Error(`KUBERNETES_SERVICE_HOST must be a host name or IP address, got ${quote(host)}`);
  }
  const portNumber = /^\d{1,5}$/.test(port) ? Number(port) : 0;
  if (portNumber < 1 || portNumber > 65535) throw new Error(`KUBERNETES_SERVICE_PORT must be a port number, got ${quote(port)}`);
  return { host, port };
}
