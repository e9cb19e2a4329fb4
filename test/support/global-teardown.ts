/** jest globalTeardown: stops the control plane (jest runs it whether tests passed or not). */
import type { ControlPlane } from '../../dev/control-plane/control-plane.js';

export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as { gpudiagControlPlane?: ControlPlane };
  await holder.gpudiagControlPlane?.stop();
  delete holder.gpudiagControlPlane;
}
