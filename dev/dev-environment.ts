/**
 * The local gpudiag environment behind `gpudiag dev up`: a control plane with the CRDs and RBAC,
 * a simulated GPU fleet of real agents, the operator (as its own least-privilege
 * ServiceAccount), and the samples. Components start in order and stop in reverse.
 */
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { tokenVerifier } from '../agent/auth/token-verifier.js';
import { createLogger } from '../lib/logger.js';
import { parseOperatorConfig } from '../operator/config.js';
import { Operator } from '../operator/operator.js';
import { applyObjects, installCrds, readManifests } from './apply.js';
import { repoRoot } from './control-plane/binaries.js';
import { ControlPlane, freePort, kubeConfigForToken } from './control-plane/control-plane.js';
import { defaultFleet, SimulatedFleet } from './fleet/simulated-fleet.js';
import { startRealCluster } from './real-node/cluster.js';
import { prepareDemoGpu, REAL_NODE_SCENARIO } from './real-node/demo-gpu.js';
import { ensureHelm, helmInstall, REAL_NODE_VALUES } from './real-node/helm.js';
import { ensureGpudiagImages } from './real-node/images.js';
import { fleetAddressBesideRealNode, REAL_NODE_NAME } from './real-node/real-node.js';

/** Where the operator, agent pods and the leader Lease live locally (as the chart installs them). */
export const DEV_NAMESPACE = 'gpudiag-system';
const AGENT_AUDIENCE = 'gpudiag-agent';

/** Options for the local environment. */
export interface DevEnvironmentOptions {
  /** State directory (kubeconfig, logs, data); `.gpudiag` in the current directory by default. */
  stateDir: string;
  /** Apply config/samples/ once everything runs. */
  applySamples: boolean;
  /** Simulated GPU nodes (gpu-node-1..N) with real agents; 0 starts no fleet. */
  nodes: number;
  /** Scenarios the nodes cycle through (agent/fake-nvml/scenarios/); the default mix when absent or empty. */
  scenarios?: readonly string[];
  /**
   * Run a real node (dev/real-node) and install charts/gpudiag on it with helm: the chart's
   * operator then diagnoses the real node and the simulated fleet beside it.
   */
  realNode?: boolean;
  onProgress: (message: string) => void;
  signal: AbortSignal;
}

/** A running local environment. */
export interface DevEnvironment {
  server: string;
  kubeconfigPath: string;
  logDir: string;
  fleetSize: number;
  /** The real node's name, when one runs. */
  realNode?: string;
  stop(): Promise<void>;
}

/** The Helm release `dev up --real-node` installs (the chart names its objects after it). */
export const DEV_RELEASE = 'gpudiag';
/** The chart's default agent port (the operator dials the simulated agents on it too). */
const CHART_AGENT_PORT = 9440;

/** Starts the control plane, installs CRDs and samples, and writes `<stateDir>/kubeconfig`. */
export async function startDevEnvironment(options: DevEnvironmentOptions): Promise<DevEnvironment> {
  if (options.realNode === true) return startWithRealNode(options);
  const { stateDir, onProgress, signal } = options;
  const controlPlaneDir = path.join(stateDir, 'control-plane');
  // Each run starts from an empty store: the environment is disposable by design.
  await rm(controlPlaneDir, { recursive: true, force: true });
  await mkdir(controlPlaneDir, { recursive: true });
  const controlPlane = await ControlPlane.start({ dir: controlPlaneDir, keepDir: true, onProgress, signal });
  const stops: (() => Promise<void>)[] = [() => controlPlane.stop()];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const kc = controlPlane.adminKubeConfig();
    onProgress('installing CRDs from crds/');
    await installCrds(kc, path.join(repoRoot, 'crds'));
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: DEV_NAMESPACE } } });
    onProgress('applying config/rbac/ (the operator and agents run with exactly these permissions)');
    await applyObjects(kc, await readManifests([path.join(repoRoot, 'config', 'rbac')]));
    const logger = createLogger({ level: 'warn', defaultMeta: { component: 'dev' }, stderrOnly: true });
    if (options.nodes > 0) {
      const port = await freePort();
      const serviceAccountKc = async (name: string, audiences: string[]): Promise<{ kc: KubeConfig; token: string }> => {
        const res = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
          namespace: DEV_NAMESPACE,
          name,
          body: { spec: { audiences, expirationSeconds: 24 * 3600 } },
        });
        const token = res.status?.token ?? '';
        const caPem = await readFile(controlPlane.endpoint.certs.caCert, 'utf8');
        return { kc: kubeConfigForToken(controlPlane.endpoint.server, caPem, token, name), token };
      };
      onProgress(`starting a simulated fleet of ${options.nodes} GPU node(s)`);
      const agentIdentity = await serviceAccountKc('gpudiag-agent', []);
      const fleet = await SimulatedFleet.start({
        kc,
        namespace: DEV_NAMESPACE,
        nodes: defaultFleet(options.nodes, options.scenarios),
        port,
        logger,
        auth: {
          // One verifier (and key cache) for the whole fleet, as a production agent verifies: locally, TokenReview as the fallback.
          authenticator: tokenVerifier(agentIdentity.kc, { mode: 'auto', audience: AGENT_AUDIENCE, logger }),
          allowedCallers: [`system:serviceaccount:${DEV_NAMESPACE}:gpudiag-operator`],
        },
        onProgress,
      });
      stops.push(() => fleet.stop());
      onProgress('starting the operator as ServiceAccount gpudiag-operator');
      const operatorIdentity = await serviceAccountKc('gpudiag-operator', []);
      const agentToken = await serviceAccountKc('gpudiag-operator', [AGENT_AUDIENCE]);
      const config = parseOperatorConfig(
        ['--agent-namespace', DEV_NAMESPACE, '--agent-port', String(port), '--probe-listen', '127.0.0.1:0'],
        {},
        'dev-operator',
      );
      const operator = await Operator.start(config, {
        kc: operatorIdentity.kc,
        logger,
        tokenProvider: () => Promise.resolve(agentToken.token),
      });
      stops.push(() => operator.stop());
    }
    if (options.applySamples) {
      onProgress('applying config/samples/');
      await applyObjects(kc, await readManifests([path.join(repoRoot, 'config', 'samples')]));
    }
    const kubeconfigPath = path.join(stateDir, 'kubeconfig');
    await copyFile(controlPlane.endpoint.adminKubeconfigPath, kubeconfigPath);
    return {
      server: controlPlane.endpoint.server,
      kubeconfigPath,
      logDir: path.join(controlPlaneDir, 'logs'),
      fleetSize: options.nodes,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * The real-node variant: the images built and loaded, the chart installed by helm (CRDs, RBAC,
 * the agent DaemonSet, the operator Deployment: what a user installs), and the simulated fleet, if
 * any, on addresses the chart's operator pods can reach.
 */
async function startWithRealNode(options: DevEnvironmentOptions): Promise<DevEnvironment> {
  const { stateDir, onProgress, signal } = options;
  const controlPlaneDir = path.join(stateDir, 'control-plane');
  const logDir = path.join(controlPlaneDir, 'logs');
  await rm(controlPlaneDir, { recursive: true, force: true });
  await mkdir(controlPlaneDir, { recursive: true });
  // Before anything runs: a cold image or helm build takes minutes and needs nothing running.
  const images = await ensureGpudiagImages(onProgress);
  signal.throwIfAborted();
  onProgress('locating helm (dev/tools/build-helm.sh; the first run builds it)');
  const helm = await ensureHelm();
  const cluster = await startRealCluster({
    controlPlaneDir,
    logDir,
    name: REAL_NODE_NAME,
    labels: { 'nvidia.com/gpu.present': 'true' },
    withoutNodeLifecycle: options.nodes > 0,
    onProgress,
    signal,
  });
  const stops: (() => Promise<void>)[] = [() => cluster.stop()];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    onProgress('loading the agent and operator images into the node');
    await cluster.node.importImages([images.agentArchive, images.operatorArchive]);
    const kubeconfigPath = path.join(stateDir, 'kubeconfig');
    await copyFile(cluster.controlPlane.endpoint.adminKubeconfigPath, kubeconfigPath);
    onProgress(
      `the real node's GPUs: the fake NVML library with scenario ${REAL_NODE_SCENARIO}, and a kernel-log file (the chart's ` +
        `agent.demo values)`,
    );
    const demo = await prepareDemoGpu(cluster.node.hostPathFor('demo-gpu'), REAL_NODE_SCENARIO);
    onProgress(`helm install ${DEV_RELEASE} charts/gpudiag --values dev/real-node/values.yaml (waits for its pods to be Ready)`);
    await helmInstall(helm, {
      kubeconfig: kubeconfigPath,
      release: DEV_RELEASE,
      namespace: DEV_NAMESPACE,
      valuesFiles: [REAL_NODE_VALUES],
      set: {
        'agent.stateHostPath': cluster.node.hostPathFor('var-lib-gpudiag'),
        'agent.podResourcesHostPath': cluster.node.podResourcesDir,
        ...demo.values,
      },
      signal,
    });
    onProgress('the chart is installed: agent and operator pods Ready');
    const kc = cluster.controlPlane.adminKubeConfig();
    if (options.nodes > 0) {
      await cluster.network.addFleetRange();
      const logger = createLogger({ level: 'warn', defaultMeta: { component: 'dev' }, stderrOnly: true });
      // The agents check callers with TokenReview as the chart's agent ServiceAccount, as the DaemonSet's pods do.
      const res = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        namespace: DEV_NAMESPACE,
        name: `${DEV_RELEASE}-agent`,
        body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
      });
      const caPem = await readFile(cluster.controlPlane.endpoint.certs.caCert, 'utf8');
      const agentKc = kubeConfigForToken(cluster.controlPlane.endpoint.server, caPem, res.status?.token ?? '', `${DEV_RELEASE}-agent`);
      onProgress(`starting a simulated fleet of ${options.nodes} GPU node(s) beside the real node`);
      const fleet = await SimulatedFleet.start({
        kc,
        namespace: DEV_NAMESPACE,
        nodes: defaultFleet(options.nodes, options.scenarios),
        port: CHART_AGENT_PORT,
        addressOf: fleetAddressBesideRealNode,
        podLabels: { 'app.kubernetes.io/instance': DEV_RELEASE },
        logger,
        auth: {
          authenticator: tokenVerifier(agentKc, { mode: 'auto', audience: AGENT_AUDIENCE, logger }),
          allowedCallers: [`system:serviceaccount:${DEV_NAMESPACE}:${DEV_RELEASE}-operator`],
        },
        onProgress,
      });
      stops.push(() => fleet.stop());
    }
    if (options.applySamples) {
      onProgress('applying config/samples/');
      await applyObjects(kc, await readManifests([path.join(repoRoot, 'config', 'samples')]));
    }
    return {
      server: cluster.controlPlane.endpoint.server,
      kubeconfigPath,
      logDir,
      fleetSize: options.nodes,
      realNode: cluster.node.name,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
