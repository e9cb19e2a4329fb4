/** The images a real node runs: gpudiag's (dev/images/build.sh) and the Debian-made Node base it builds them on. */
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../control-plane/binaries.js';
import { sh } from './host.js';

const run = promisify(execFile);

/** The agent and operator archives, with the names the chart's default values give them. */
export interface GpudiagImages {
  agentArchive: string;
  operatorArchive: string;
  agentImage: string;
  operatorImage: string;
}

/** Runs dev/images/build.sh (`npm run images`; unchanged inputs skip the build) and returns its archives. */
export async function ensureGpudiagImages(onProgress: (message: string) => void = () => undefined): Promise<GpudiagImages> {
  onProgress('building the agent and operator images (dev/images/build.sh; cached when nothing changed)');
  let dir: string;
  try {
    const { stdout } = await run('bash', [path.join(repoRoot, 'dev', 'images', 'build.sh')], { maxBuffer: 1 << 20, timeout: 60 * 60_000 });
    dir = stdout.trim().split('\n').at(-1) ?? '';
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`building the images failed:\n${stderr.split('\n').slice(-20).join('\n')}`, { cause: err });
  }
  const version = (JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const tag = process.env['GPUDIAG_IMAGE_TAG'] ?? version;
  const images: GpudiagImages = {
    agentArchive: path.join(dir, 'agent.oci.tar'),
    operatorArchive: path.join(dir, 'operator.oci.tar'),
    agentImage: `ghcr.io/gpudiag/agent:${tag}`,
    operatorImage: `ghcr.io/gpudiag/operator:${tag}`,
  };
  for (const f of [images.agentArchive, images.operatorArchive]) await access(f);
  return images;
}

/**
 * The runtime base dev/images/build.sh made (`localhost/gpudiag-base:<recipe>`: Node from Debian
 * packages), written as an OCI archive for the node, cached by image id. Run ensureGpudiagImages first.
 */
export async function localBaseImage(): Promise<{ image: string; archive: string }> {
  const listed = await sh('buildah', ['images', '--format', '{{.Name}}:{{.Tag}} {{.ID}}']);
  const row = listed
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find(([name]) => name?.startsWith('localhost/gpudiag-base:') === true);
  const [image, id] = row ?? [];
  if (image === undefined || id === undefined || id === '')
    throw new Error("no localhost/gpudiag-base image in buildah's storage: run dev/images/build.sh");
  const dir = path.join(process.env['GPUDIAG_CACHE_DIR'] ?? path.join(os.homedir(), '.cache', 'gpudiag'), 'real-node', 'base');
  const archive = path.join(dir, `${id}.oci.tar`);
  const cached = await access(archive).then(
    () => true,
    () => false,
  );
  if (!cached) {
    await mkdir(dir, { recursive: true });
    await rm(`${archive}.tmp`, { force: true });
    await sh('buildah', ['push', '--quiet', image, `oci-archive:${archive}.tmp:${image}`]);
    await rename(`${archive}.tmp`, archive);
    await writeFile(`${archive}.name`, `${image}\n`);
  }
  return { image, archive };
}
