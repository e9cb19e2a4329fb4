import { describe, expect, it } from '@jest/globals';
import { containerOfCgroupFile } from './cgroup.js';

const UID = '7c1b2f0e-3d4a-4b5c-8d9e-0f1a2b3c4d5e';
const UID_SYSTEMD = UID.replaceAll('-', '_');
const STATIC_UID = '3f8a1c2d4e5b6a7c8d9e0f1a2b3c4d5e';
const ID = 'a3f1c9e2b7d54f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718';
const expected = { podUid: UID, containerId: ID };

describe('containerOfCgroupFile', () => {
  it.each<[string, string, { podUid: string; containerId: string } | undefined]>([
    [
      'v2, systemd, burstable, containerd',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SYSTEMD}.slice/cri-containerd-${ID}.scope\n`,
      expected,
    ],
    ['v2, systemd, guaranteed, CRI-O', `0::/kubepods.slice/kubepods-pod${UID_SYSTEMD}.slice/crio-${ID}.scope\n`, expected],
    [
      'v2, systemd, besteffort, Docker',
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_SYSTEMD}.slice/docker-${ID}.scope\n`,
      expected,
    ],
    ['v2, cgroupfs, burstable', `0::/kubepods/burstable/pod${UID}/${ID}\n`, expected],
    ['v2, cgroupfs, guaranteed', `0::/kubepods/pod${UID}/${ID}\n`, expected],
    ['v2 read from inside another cgroup namespace', `0::/../../kubepods/besteffort/pod${UID}/${ID}\n`, expected],
    ['v2, a sub-cgroup the container made', `0::/kubepods/burstable/pod${UID}/${ID}/workers/w1\n`, expected],
    ['v2, a custom cgroup root above kubepods', `0::/node-agent.slice/kubepods/burstable/pod${UID}/${ID}\n`, expected],
    ['v2, a static pod (32-hex UID)', `0::/kubepods/burstable/pod${STATIC_UID}/${ID}\n`, { podUid: STATIC_UID, containerId: ID }],
    [
      'v1, cgroupfs (the hierarchies of this test machine)',
      [
        '12:pids:/kubepods/besteffort/pod' + UID + '/' + ID,
        '11:memory:/kubepods/besteffort/pod' + UID + '/' + ID,
        '1:name=systemd:/kubepods/besteffort/pod' + UID + '/' + ID,
        '0::/',
        '',
      ].join('\n'),
      expected,
    ],
    [
      'v1, systemd',
      `4:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_SYSTEMD}.slice/cri-containerd-${ID}.scope\n` +
        `1:name=systemd:/init.scope\n`,
      expected,
    ],
    [
      "v1, containerd's colon form",
      `3:cpu,cpuacct:/system.slice/containerd.service/kubepods-burstable-pod${UID_SYSTEMD}.slice:cri-containerd:${ID}\n`,
      expected,
    ],
    ['the first line that names a container wins', `5:cpuset:/\n4:memory:/kubepods/pod${UID}/${ID}\n`, expected],
    ['a host process', '0::/system.slice/sshd.service\n', undefined],
    ['a user session', '0::/user.slice/user-1000.slice/session-3.scope\n', undefined],
    ['the pod cgroup itself (no container)', `0::/kubepods/burstable/pod${UID}\n`, undefined],
    ["CRI-O's conmon monitor", `0::/kubepods.slice/kubepods-pod${UID_SYSTEMD}.slice/crio-conmon-${ID}.scope\n`, undefined],
    ['a pod segment outside kubepods', `0::/docker/pod${UID}/${ID}\n`, undefined],
    ['a container id that is too short', `0::/kubepods/pod${UID}/${ID.slice(1)}\n`, undefined],
    ['an uppercase UID', `0::/kubepods/pod${UID.toUpperCase()}/${ID}\n`, undefined],
    ['a UID that is not one', `0::/kubepods/podnot-a-uid/${ID}\n`, undefined],
    ['an empty file', '', undefined],
    ['garbage', '\u0000\u00ff:::\n::\nno colons here\n' + 'x'.repeat(10_000), undefined],
  ])('%s', (_what, text, container) => {
    expect(containerOfCgroupFile(text)).toEqual(container);
  });
});
