import { describe, expect, it } from '@jest/globals';
import { collectDefaultMetrics, Registry as FullRegistry } from 'prom-client';
import { collectProcessMetrics, Registry } from './prom-lean.js';

describe('the agent’s process metrics without prom-client’s index', () => {
  it('are the metrics collectDefaultMetrics registers, name for name and type for type', async () => {
    const full = new FullRegistry();
    collectDefaultMetrics({ register: full, prefix: 'x_' });
    const lean = new Registry();
    collectProcessMetrics(lean, 'x_');
    const shape = async (r: FullRegistry): Promise<string[]> => (await r.getMetricsAsJSON()).map((m) => `${m.name} ${m.type}`).sort();
    expect(await shape(lean)).toEqual(await shape(full));
  });

  it('count CPU seconds in each scrape, user plus system in the total', async () => {
    const lean = new Registry();
    collectProcessMetrics(lean, 'x_');
    const spin = Date.now() + 50;
    while (Date.now() < spin) Math.sqrt(Math.random());
    const values = Object.fromEntries(
      (await lean.getMetricsAsJSON()).filter((m) => m.name.startsWith('x_process_cpu')).map((m) => [m.name, m.values[0]?.value ?? NaN]),
    );
    const [user, system, total] = [
      values['x_process_cpu_user_seconds_total'],
      values['x_process_cpu_system_seconds_total'],
      values['x_process_cpu_seconds_total'],
    ];
    expect(user).toBeGreaterThan(0);
    expect(total).toBeCloseTo((user ?? 0) + (system ?? 0), 9);
  });
});
