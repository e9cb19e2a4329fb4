/**
 * Kubernetes Events (events.k8s.io/v1) about gpudiag objects: Normal for progress, Warning for
 * critical findings. Event failures are logged, never fatal: an Event is a courtesy, status is
 * the record.
 */
import { randomBytes } from 'node:crypto';
import type { V1ObjectReference } from '@kubernetes/client-node';
import { ApiClient } from '../lib/kube/api-client.js';
import type { KubeTarget } from '../lib/kube/raw-request.js';
import { errorFields, type Logger } from '../lib/logger.js';

/** The object an Event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

/** Records Events through the API server; each call gives up with `signal` or after its own deadline. */
export interface EventRecorder {
  normal(subject: EventSubject, reason: string, note: string, signal?: AbortSignal): Promise<void>;
  warning(subject: EventSubject, reason: string, note: string, signal?: AbortSignal): Promise<void>;
}

/** Namespace used for Events about cluster-scoped objects (policies). */
const CLUSTER_EVENT_NAMESPACE = 'default';
const MAX_NOTE = 1024;
const REPORTING_CONTROLLER = 'gpudiag.io/operator';
/** An Event is a courtesy: never wait long for one. */
const EVENT_TIMEOUT_MS = 10_000;

/** An EventRecorder backed by events.k8s.io/v1. */
export function apiEventRecorder(kc: KubeTarget, instance: string, logger: Logger): EventRecorder {
  const api = new ApiClient(kc, { timeoutMs: EVENT_TIMEOUT_MS });
  const record = async (
    subject: EventSubject,
    type: 'Normal' | 'Warning',
    reason: string,
    note: string,
    signal: AbortSignal | undefined,
  ): Promise<void> => {
    const namespace = subject.namespace ?? CLUSTER_EVENT_NAMESPACE;
    const regarding: V1ObjectReference = {
      apiVersion: subject.apiVersion,
      kind: subject.kind,
      name: subject.name,
      ...(subject.namespace !== undefined ? { namespace: subject.namespace } : {}),
      ...(subject.uid !== undefined ? { uid: subject.uid } : {}),
    };
    try {
      await api.request({
        method: 'POST',
        path: `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        body: {
          metadata: { name: `${subject.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`.slice(0, 253), namespace },
          // events.k8s.io/v1 wants eventTime as a MicroTime (6 fractional digits).
          eventTime: new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
          reportingController: REPORTING_CONTROLLER,
          reportingInstance: instance,
          action: 'Diagnose',
          reason,
          type,
          note: note.length > MAX_NOTE ? `${note.slice(0, MAX_NOTE - 1)}…` : note,
          regarding,
        },
        signal,
      });
    } catch (err) {
      logger.warn('could not record event', { kind: subject.kind, name: subject.name, reason, ...errorFields(err) });
    }
  };
  return {
    normal: (s, reason, note, signal) => record(s, 'Normal', reason, note, signal),
    warning: (s, reason, note, signal) => record(s, 'Warning', reason, note, signal),
  };
}
