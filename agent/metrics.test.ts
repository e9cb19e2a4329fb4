/** The agent's hung-NVML-call gauge is read at scrape time, so an alert sees a call hang and return. */
import { describe, expect, it } from '@jest/globals';
import { AgentMetrics } from './metrics.js';

async function hungCalls(metrics: AgentMetrics): Promise<number[]> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'gpudiag_agent_nvml_hung_calls');
  return (metric?.values ?? []).map((v) => v.value);
}

describe('AgentMetrics', () => {
  it('reports 0 hung NVML calls before NVML is observed (no-GPU mode), then the count at each scrape', async () => {
    const metrics = new AgentMetrics(false);
    expect(await hungCalls(metrics)).toEqual([0]);
    let hung = 2;
    metrics.observeNvmlHungCalls(() => hung);
    expect(await hungCalls(metrics)).toEqual([2]);
    hung = 0;
    expect(await hungCalls(metrics)).toEqual([0]);
  });

  it("counts token verifications by method and result, and reads the key cache's refreshes at each scrape", async () => {
    const metrics = new AgentMetrics(false);
    metrics.tokenVerifications.inc({ method: 'local', result: 'allowed' });
    const refreshes = { success: 1, failure: 0 };
    metrics.observeKeyRefreshes(() => refreshes);
    const values = async (name: string): Promise<Record<string, number>> => {
      const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
      return Object.fromEntries((metric?.values ?? []).map((v) => [Object.values(v.labels).join(','), v.value]));
    };
    expect(await values('gpudiag_agent_token_verifications_total')).toEqual({ 'local,allowed': 1 });
    expect(await values('gpudiag_agent_jwks_refreshes_total')).toEqual({ success: 1, failure: 0 });
    refreshes.success = 3;
    refreshes.failure = 1;
    expect(await values('gpudiag_agent_jwks_refreshes_total')).toEqual({ success: 3, failure: 1 });
    expect(await values('gpudiag_agent_jwks_refreshes_total')).toEqual({ success: 3, failure: 1 });
  });
});
