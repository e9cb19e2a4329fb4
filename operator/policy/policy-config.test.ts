import { describe, expect, it } from '@jest/globals';
import { DEFAULT_POLICY_SELECTOR, OperatorConfigError, parseOperatorConfig } from '../config.js';

/** The operator options that drive the GPUHealthPolicy controller. */
describe('operator config: policy options', () => {
  it('defaults: every policy without gpudiag.io/shard, no interval cap', () => {
    const config = parseOperatorConfig([], {}, 'host');
    expect(config.policySelector).toBe(DEFAULT_POLICY_SELECTOR);
    expect(config.policySelector).toBe('!gpudiag.io/shard');
    expect(config.policyMaxIntervalSeconds).toBe(0);
  });

  it.each([['gpudiag.io/shard=team-a'], ['gpudiag.io/shard'], ['!gpudiag.io/shard'], ['env!=dev,tier=gpu'], ['a==b']])(
    'accepts --policy-selector %s',
    (selector) => {
      expect(parseOperatorConfig(['--policy-selector', selector], {}, 'host').policySelector).toBe(selector);
    },
  );

  it('an empty --policy-selector selects every policy', () => {
    expect(parseOperatorConfig(['--policy-selector', ''], {}, 'host').policySelector).toBe('');
  });

  it('reads the environment when the flag is absent', () => {
    const config = parseOperatorConfig(
      [],
      { GPUDIAG_POLICY_SELECTOR: 'gpudiag.io/shard=x', GPUDIAG_POLICY_MAX_INTERVAL_SECONDS: '5' },
      'host',
    );
    expect(config).toMatchObject({ policySelector: 'gpudiag.io/shard=x', policyMaxIntervalSeconds: 5 });
  });

  it.each([
    ['--policy-selector', 'k=v,', 'policy-selector'],
    ['--policy-selector', '!k=v', 'policy-selector'],
    ['--policy-selector', 'bad key=v', 'policy-selector'],
    ['--policy-selector', 'k=bad value', 'policy-selector'],
    ['--policy-selector', 'k in (a,b)', 'policy-selector'],
    ['--policy-max-interval-seconds', '-1', 'policy-max-interval-seconds'],
    ['--policy-max-interval-seconds', '1.5', 'policy-max-interval-seconds'],
  ])('rejects %s %p naming the flag', (flag, value, named) => {
    expect(() => parseOperatorConfig([flag, value], {}, 'host')).toThrow(OperatorConfigError);
    expect(() => parseOperatorConfig([flag, value], {}, 'host')).toThrow(`--${named}`);
  });
});
