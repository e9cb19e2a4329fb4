/**
 * A control plane with a real node joined, started in the order they depend on each other (the
 * node's bridge first: the API server listens on its address) and stopped in reverse.
 */
import { ControlPlane } from '../control-plane/control-plane.js';
import { NodeNetwork, RealNode, type RealNodeOptions } from './real-node.js';

/** Options for a one-node cluster. */
export interface RealClusterOptions extends Omit<RealNodeOptions, 'controlPlane' | 'network' | 'dir' | 'signal' | 'onProgress'> {
  /** The control plane's directory (kept after stop when given, for its logs). */
  controlPlaneDir?: string;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
}

/** A running one-node cluster. */
export interface RealCluster {
  controlPlane: ControlPlane;
  node: RealNode;
  network: NodeNetwork;
  /** Stops the node (and everything it put on the machine), then the control plane. */
  stop(): Promise<void>;
}

/** Starts the bridge, the control plane and the node; on failure stops what started. */
export async function startRealCluster(options: RealClusterOptions = {}): Promise<RealCluster> {
  const { controlPlaneDir, onProgress, signal, ...nodeOptions } = options;
  const progress = onProgress ?? ((): void => undefined);
  const network = await NodeNetwork.create();
  let controlPlane: ControlPlane;
  try {
    controlPlane = await ControlPlane.start({
      realNode: { address: network.nodeIp },
      onProgress: progress,
      ...(controlPlaneDir !== undefined ? { dir: controlPlaneDir, keepDir: true } : {}),
      ...(signal !== undefined ? { signal } : {}),
    });
  } catch (err) {
    await network.delete();
    throw err;
  }
  let node: RealNode;
  try {
    node = await RealNode.start({
      ...nodeOptions,
      controlPlane,
      network,
      onProgress: progress,
      ...(signal !== undefined ? { signal } : {}),
    });
  } catch (err) {
    await controlPlane.stop();
    throw err;
  }
  let stopped = false;
  return {
    controlPlane,
    node,
    network,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        await node.stop();
      } finally {
        await controlPlane.stop();
      }
    },
  };
}
