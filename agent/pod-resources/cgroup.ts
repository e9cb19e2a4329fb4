/**
 * The pod and container of a process, read from its `/proc/<pid>/cgroup`: the kubelet puts each
 * container in a cgroup named after the pod UID, and the runtime names the container's own
 * cgroup after its id. Both kubelet cgroup drivers and both cgroup versions are understood:
 *
 *   systemd:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
 *   cgroupfs: /kubepods/burstable/pod<uid>/<id>
 *   containerd's systemd form on cgroup v1: /system.slice/containerd.service/kubepods-burstable-pod<uid>.slice:cri-containerd:<id>
 *
 * A path may start with `/../..` (a reader in its own cgroup namespace) or continue below the
 * container (a container that makes sub-cgroups); anything else is not a container process.
 */

/** The pod and container a process runs in. */
export interface ProcessContainer {
  /** The pod's UID (a UUID, or 32 hex digits for static pods). */
  podUid: string;
  /** The runtime's container id, 64 hex digits. */
  containerId: string;
}

const UID = '([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})';
const CONTAINER_ID = '([0-9a-f]{64})';
/** cgroupfs: `pod<uid>` under a `kubepods` hierarchy. */
const CGROUPFS_POD = new RegExp(`^pod${UID}$`);
/** systemd: `kubepods[-<qos>]-pod<uid>.slice`. */
const SYSTEMD_POD = new RegExp(`^kubepods(?:-burstable|-besteffort)?-pod${UID}\\.slice$`);
/** containerd's `<slice>:<prefix>:<id>` form, pod and container in one segment. */
const SYSTEMD_COLON = new RegExp(`^kubepods(?:-burstable|-besteffort)?-pod${UID}\\.slice:(?:cri-containerd|crio|docker):${CONTAINER_ID}$`);
/** The container's scope under systemd (not CRI-O's `crio-conmon-` monitor). */
const SYSTEMD_CONTAINER = new RegExp(`^(?:cri-containerd|crio|docker)-${CONTAINER_ID}\\.scope$`);
const CGROUPFS_CONTAINER = new RegExp(`^${CONTAINER_ID}$`);

/** Pod UIDs as the API writes them: systemd slices spell the dashes as underscores. */
function normaliseUid(uid: string): string {
  return uid.replaceAll('_', '-');
}

/** The container of one cgroup path, or undefined. */
function containerOfPath(cgroupPath: string): ProcessContainer | undefined {
  const segments = cgroupPath.split('/');
  let underKubepods = false;
  for (let i = 0; i < segments.length; i += 1) {
    const segment = segments[i] as string;
    const next = segments[i + 1] ?? '';
    const colon = SYSTEMD_COLON.exec(segment);
    if (colon !== null) return { podUid: normaliseUid(colon[1] as string), containerId: colon[2] as string };
    const systemd = SYSTEMD_POD.exec(segment);
    if (systemd !== null) {
      const container = SYSTEMD_CONTAINER.exec(next);
      return container === null ? undefined : { podUid: normaliseUid(systemd[1] as string), containerId: container[1] as string };
    }
    if (segment === 'kubepods' || segment === 'kubepods.slice') underKubepods = true;
    const cgroupfs = underKubepods ? CGROUPFS_POD.exec(segment) : null;
    if (cgroupfs !== null) {
      const container = CGROUPFS_CONTAINER.exec(next);
      return container === null ? undefined : { podUid: normaliseUid(cgroupfs[1] as string), containerId: container[1] as string };
    }
  }
  return undefined;
}

/**
 * The pod and container of the process whose `/proc/<pid>/cgroup` text this is (any line that
 * names one: the v2 `0::` line or any v1 hierarchy), or undefined for a process outside pods.
 */
export function containerOfCgroupFile(text: string): ProcessContainer | undefined {
  for (const line of text.split('\n')) {
    // `hierarchy-id:controllers:path`; the path itself may contain colons.
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const found = containerOfPath(line.slice(second + 1));
    if (found !== undefined) return found;
  }
  return undefined;
}
