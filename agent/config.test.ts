import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseAgentConfig } from './config.js';

const base = ['--node-name', 'gpu-node-1', '--allowed-callers', 'system:serviceaccount:gpudiag:operator'];

describe('parseAgentConfig', () => {
  it('applies defaults and freezes the result', () => {
    const config = parseAgentConfig(base, {});
    expect(config).toMatchObject({ nodeName: 'gpu-node-1', listenHost: '0.0.0.0', listenPort: 9440, auth: 'tokenreview', kmsgPath: '/dev/kmsg', kmsgPollMs: 500, snapshotCacheMs: 2000 });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads the environment when a flag is absent, and flags win', () => {
    const env = { NODE_NAME: 'from-env', GPUDIAG_AGENT_LISTEN: '127.0.0.2:9999', GPUDIAG_AGENT_AUTH: 'none' };
    expect(parseAgentConfig([], env)).toMatchObject({ nodeName: 'from-env', listenHost: '127.0.0.2', listenPort: 9999, auth: 'none' });
    expect(parseAgentConfig(['--node-name', 'from-flag'], env).nodeName).toBe('from-flag');
  });

  it('parses a bracketed IPv6 listen address and an empty kmsg path (kernel log disabled)', () => {
    expect(parseAgentConfig([...base, '--listen', '[::1]:9440', '--kmsg-path', ''], {})).toMatchObject({ listenHost: '::1', listenPort: 9440, kmsgPath: '' });
  });

  it('takes the in-cluster API server from KUBERNETES_SERVICE_HOST/PORT only when TokenReview uses it', () => {
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    expect(parseAgentConfig(base, env).kubernetesService).toEqual({ host: '10.96.0.1', port: '443' });
    expect(parseAgentConfig(base, {}).kubernetesService).toBeUndefined();
    expect(parseAgentConfig([...base, '--auth', 'none'], { ...env, KUBERNETES_SERVICE_PORT: 'https' }).kubernetesService).toBeUndefined();
    expect(() => parseAgentConfig(base, { ...env, KUBERNETES_SERVICE_PORT: 'https' })).toThrow('KUBERNETES_SERVICE_PORT must be a port number, got "https"');
    expect(() => parseAgentConfig(base, { ...env, KUBERNETES_SERVICE_HOST: 'a b' })).toThrow('KUBERNETES_SERVICE_HOST must be a host name or IP address');
  });

  it.each([
    [[], /--node-name \(or NODE_NAME\) is required/],
    [['--node-name', 'Bad_Name', '--auth', 'none'], /--node-name must be a DNS-1123 subdomain/],
    [['--node-name', 'n'], /--allowed-callers is required/],
    [[...base, '--listen', '9440'], /--listen must be HOST:PORT/],
    [[...base, '--listen', '127.0.0.1:70000'], /--listen must be HOST:PORT .*port must be an integer between 0 and 65535/],
    [[...base, '--tls-cert', '/c.pem'], /--tls-cert and --tls-key must be given together/],
    [[...base, '--auth', 'mtls'], /--auth must be tokenreview or none, got "mtls"/],
    [[...base, '--kmsg-poll-ms', 'fast'], /--kmsg-poll-ms must be an integer/],
    [[...base, '--snapshot-cache-ms=-1'], /--snapshot-cache-ms must be an integer between 0/],
    [[...base, '--log-level', 'loud'], /--log-level must be/],
    [[...base, '--no-such-flag', 'x'], /Unknown option '--no-such-flag'/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseAgentConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseAgentConfig(argv, {})).toThrow(message);
  });
});
