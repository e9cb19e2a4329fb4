/** Runs the real kubectl against the test control plane. */
import { execFile } from 'node:child_process';

/** stdout, stderr and exit code of one kubectl run. */
export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs kubectl with the given kubeconfig; never throws on a non-zero exit. */
export async function kubectl(kubeconfig: string, args: string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(new Error(`kubectl ${args.join(' ')} could not run`, { cause: err }));
        return;
      }
      resolve({ stdout, stderr, code: err === null ? 0 : (err.code as number) });
    });
    child.stdin?.end(stdin ?? '');
  });
}
