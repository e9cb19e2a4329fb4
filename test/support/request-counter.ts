/**
 * Counting one identity's requests on one resource by verb, as the real API server sees them.
 * apiserver_request_total has no user label, and other test files share the control plane, so
 * each verb gets a FlowSchema of its own matching only that user, verb, resource and namespace;
 * API Priority and Fairness then counts what it dispatched for it
 * (apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}).
 */
import { kubeGetText, kubeRequest } from '../../lib/kube/raw-request.js';
import { testCluster, uniqueSuffix } from './cluster.js';

const FLOW_SCHEMAS = '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas';

/** What to count. */
export interface CountedRequests {
  user: string;
  namespace: string;
  group: string;
  resource: string;
  verbs: readonly string[];
}

/** Requests counted so far, by verb. */
export interface RequestCounter {
  counts(): Promise<Record<string, number>>;
  /** Resolves once the API server's flow control matches the schemas (they take effect asynchronously). */
  ready(probe: () => Promise<unknown>, verb: string): Promise<void>;
  remove(): Promise<void>;
}

async function dispatched(): Promise<Map<string, number>> {
  const text = await kubeGetText(testCluster().admin(), '/metrics');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_flowcontrol_dispatched_requests_total{')) continue;
    const schema = /flow_schema="([^"]*)"/.exec(line)?.[1];
    if (schema !== undefined) out.set(schema, (out.get(schema) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** Creates one FlowSchema per verb (workload-high, matched before every suggested schema). */
export async function countRequests(what: CountedRequests): Promise<RequestCounter> {
  const admin = testCluster().admin();
  const names = new Map(what.verbs.map((verb) => [verb, `count-${verb}-${uniqueSuffix()}`]));
  for (const [verb, name] of names) {
    await kubeRequest(admin, {
      method: 'POST',
      path: FLOW_SCHEMAS,
      body: {
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'FlowSchema',
        metadata: { name },
        spec: {
          priorityLevelConfiguration: { name: 'workload-high' },
          matchingPrecedence: 10,
          rules: [
            {
              subjects: [{ kind: 'User', user: { name: what.user } }],
              resourceRules: [{ verbs: [verb], apiGroups: [what.group], resources: [what.resource], namespaces: [what.namespace] }],
            },
          ],
        },
      },
    });
  }
  const counts = async (): Promise<Record<string, number>> => {
    const all = await dispatched();
    return Object.fromEntries([...names].map(([verb, name]) => [verb, all.get(name) ?? 0]));
  };
  return {
    counts,
    async ready(probe, verb) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const before = (await counts())[verb] ?? 0;
        await probe();
        if (((await counts())[verb] ?? 0) > before) return;
        if (Date.now() > deadline) throw new Error(`the FlowSchema counting ${verb} did not take effect within 20 s`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async remove() {
      for (const name of names.values()) await kubeRequest(admin, { method: 'DELETE', path: `${FLOW_SCHEMAS}/${name}` });
    },
  };
}
