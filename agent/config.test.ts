import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseAgentConfig } from './config.js';

const base = ['--node-name', 'gpu-node-1', '--allowed-callers', 'system:serviceaccount:gpudiag:operator'];

describe('parseAgentConfig', () => {
  it('applies defaults and freezes the result', () => {
    const config = parseAgentConfig(base, {});
    expect(config).toMatchObject({
      nodeName: 'gpu-node-1',
      listenHost: '0.0.0.0',
      listenPort: 9440,
      auth: 'tokenreview',
      tokenVerification: 'auto',
      kmsgPath: '/dev/kmsg',
      kmsgPollMs: 500,
      snapshotCacheMs: 2000,
      heapTrimIdleMs: 1000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes --heap-trim-idle-ms from the flag or GPUDIAG_HEAP_TRIM_IDLE_MS; 0 turns the trim off', () => {
    expect(parseAgentConfig([...base, '--heap-trim-idle-ms', '0'], {}).heapTrimIdleMs).toBe(0);
    expect(parseAgentConfig([...base, '--heap-trim-idle-ms=250'], {}).heapTrimIdleMs).toBe(250);
    expect(parseAgentConfig(base, { GPUDIAG_HEAP_TRIM_IDLE_MS: '5000' }).heapTrimIdleMs).toBe(5000);
  });

  it('reads the environment when a flag is absent, and flags win', () => {
    const env = { NODE_NAME: 'from-env', GPUDIAG_AGENT_LISTEN: '127.0.0.2:9999', GPUDIAG_AGENT_AUTH: 'none' };
    expect(parseAgentConfig([], env)).toMatchObject({ nodeName: 'from-env', listenHost: '127.0.0.2', listenPort: 9999, auth: 'none' });
    expect(parseAgentConfig(['--node-name', 'from-flag'], env).nodeName).toBe('from-flag');
  });

  it('takes --token-verification from the flag or GPUDIAG_AGENT_TOKEN_VERIFICATION', () => {
    expect(parseAgentConfig([...base, '--token-verification', 'local'], {}).tokenVerification).toBe('local');
    expect(parseAgentConfig(base, { GPUDIAG_AGENT_TOKEN_VERIFICATION: 'tokenreview' }).tokenVerification).toBe('tokenreview');
  });

  it('parses a bracketed IPv6 listen address and an empty kmsg path (kernel log disabled)', () => {
    expect(parseAgentConfig([...base, '--listen', '[::1]:9440', '--kmsg-path', ''], {})).toMatchObject({
      listenHost: '::1',
      listenPort: 9440,
      kmsgPath: '',
    });
  });

  it('finds the kubelet\'s pod-resources socket and /proc by default; "" turns either off; the environment sets them', () => {
    expect(parseAgentConfig(base, {})).toMatchObject({
      podResourcesSocket: '/var/lib/kubelet/pod-resources/kubelet.sock',
      procRoot: '/proc',
    });
    expect(parseAgentConfig([...base, '--pod-resources-socket', '', '--proc-root', ''], {})).toMatchObject({
      podResourcesSocket: '',
      procRoot: '',
    });
    const env = { GPUDIAG_POD_RESOURCES_SOCKET: '/run/kubelet/pod-resources.sock', GPUDIAG_PROC_ROOT: '/' };
    expect(parseAgentConfig(base, env)).toMatchObject({ podResourcesSocket: '/run/kubelet/pod-resources.sock', procRoot: '/' });
    // The socket need not exist yet: the kubelet may start after the agent.
    expect(parseAgentConfig([...base, '--pod-resources-socket', '/nonexistent/kubelet.sock'], {}).podResourcesSocket).toBe(
      '/nonexistent/kubelet.sock',
    );
  });

  it('takes the in-cluster API server from KUBERNETES_SERVICE_HOST/PORT only when TokenReview uses it', () => {
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    expect(parseAgentConfig(base, env).kubernetesService).toEqual({ host: '10.96.0.1', port: '443' });
    expect(parseAgentConfig(base, {}).kubernetesService).toBeUndefined();
    expect(parseAgentConfig([...base, '--auth', 'none'], { ...env, KUBERNETES_SERVICE_PORT: 'https' }).kubernetesService).toBeUndefined();
    expect(() => parseAgentConfig(base, { ...env, KUBERNETES_SERVICE_PORT: 'https' })).toThrow(
      'KUBERNETES_SERVICE_PORT must be a port number, got "https"',
    );
    expect(() => parseAgentConfig(base, { ...env, KUBERNETES_SERVICE_HOST: 'a b' })).toThrow(
      'KUBERNETES_SERVICE_HOST must be a host name or IP address',
    );
  });

  it.each([
    [[], /--node-name \(or NODE_NAME\) is required/],
    [['--node-name', 'Bad_Name', '--auth', 'none'], /--node-name must be a DNS-1123 subdomain/],
    [['--node-name', 'n'], /--allowed-callers is required/],
    [[...base, '--listen', '9440'], /--listen must be HOST:PORT/],
    [[...base, '--listen', '127.0.0.1:70000'], /--listen must be HOST:PORT .*port must be an integer between 0 and 65535/],
    [[...base, '--tls-cert', '/c.pem'], /--tls-cert and --tls-key must be given together/],
    [[...base, '--auth', 'mtls'], /--auth must be tokenreview or none, got "mtls"/],
    [[...base, '--token-verification', 'jwt'], /--token-verification must be auto or local or tokenreview, got "jwt"/],
    [[...base, '--kmsg-poll-ms', 'fast'], /--kmsg-poll-ms must be an integer/],
    [[...base, '--snapshot-cache-ms=-1'], /--snapshot-cache-ms must be an integer between 0/],
    [[...base, '--log-level', 'loud'], /--log-level must be/],
    [[...base, '--heap-trim-idle-ms', '50'], /--heap-trim-idle-ms must be 0 \(off\) or at least 100, got 50/],
    [[...base, '--heap-trim-idle-ms', 'soon'], /--heap-trim-idle-ms must be an integer/],
    [[...base, '--heap-trim-idle-ms', '99999999'], /--heap-trim-idle-ms must be an integer between 0 and 3600000/],
    [[...base, '--no-such-flag', 'x'], /Unknown option '--no-such-flag'/],
    [[...base, '--pod-resources-socket', 'kubelet.sock'], /--pod-resources-socket must be an absolute path or "", got "kubelet.sock"/],
    [[...base, '--pod-resources-socket', `/${'s'.repeat(120)}`], /--pod-resources-socket must be at most 107 bytes \(a unix socket path\)/],
    [[...base, '--proc-root', 'proc'], /--proc-root must be an absolute path, got "proc"/],
    [[...base, '--proc-root', '/nonexistent-proc'], /--proc-root: cannot read "\/nonexistent-proc"/],
    [[...base, '--proc-root', '/proc/self/cgroup'], /--proc-root: "\/proc\/self\/cgroup" is not a directory/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseAgentConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseAgentConfig(argv, {})).toThrow(message);
  });
});
