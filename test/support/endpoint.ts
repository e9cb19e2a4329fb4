/** How test workers find the control plane started by globalSetup. */
import type { ControlPlaneEndpoint } from '../../dev/control-plane/control-plane.js';

/** Environment variable holding the path of the endpoint JSON file. */
export const ENDPOINT_ENV = 'GPUDIAG_TEST_ENDPOINT';

/** The endpoint plus the PIDs of etcd and kube-apiserver. */
export interface TestEndpoint extends ControlPlaneEndpoint {
  pids: number[];
}
