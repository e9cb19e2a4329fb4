/**
 * Every tool's input is strict and bounded: an unknown argument is an error naming it (a
 * misspelling never widens a call), and every string, list and number in every input schema
 * has a bound, as the JSON Schema that clients list shows.
 */
import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { tools } from './index.js';

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  [k: string]: unknown;
};

/** Paths of unbounded strings, arrays, numbers and open objects in a schema. */
function unbounded(schema: JsonSchema, path: string): string[] {
  const found: string[] = [];
  for (const alt of schema.anyOf ?? []) found.push(...unbounded(alt, path));
  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  const bounded = schema.enum !== undefined || schema.const !== undefined;
  for (const type of types) {
    if (type === 'string' && !bounded && schema['maxLength'] === undefined) found.push(`${path}: string without maxLength`);
    if ((type === 'number' || type === 'integer') && !bounded && (schema['maximum'] === undefined || schema['minimum'] === undefined))
      found.push(`${path}: number without minimum and maximum`);
    if (type === 'array') {
      if (schema['maxItems'] === undefined) found.push(`${path}: array without maxItems`);
      if (schema.items !== undefined) found.push(...unbounded(schema.items, `${path}[]`));
    }
    if (type === 'object') {
      for (const [key, child] of Object.entries(schema.properties ?? {})) found.push(...unbounded(child, `${path}.${key}`));
      if (typeof schema.additionalProperties === 'object') {
        // A map (nodeSelector): keys and values both bounded.
        found.push(...unbounded(schema.additionalProperties, `${path}.*`));
        if (schema.propertyNames !== undefined) found.push(...unbounded(schema.propertyNames, `${path}.<key>`));
        else found.push(`${path}: map without bounded keys`);
      } else if (schema.additionalProperties !== false && schema.properties !== undefined)
        found.push(`${path}: accepts unknown properties`);
    }
  }
  return found;
}

describe('MCP tool inputs', () => {
  it.each(tools.map((t) => [t.name, t] as const))(
    '%s: every string, list and number is bounded, unknown properties are refused',
    (_name, tool) => {
      const schema = z.toJSONSchema(tool.inputSchema, { io: 'input' }) as JsonSchema;
      expect(schema.additionalProperties).toBe(false);
      expect(unbounded(schema, tool.name)).toEqual([]);
    },
  );

  it.each(tools.map((t) => [t.name, t] as const))(
    '%s: a misspelled argument is an error naming it, and what the tool takes',
    async (_name, tool) => {
      const result = tool.inputSchema.safeParse({ nodez: ['gpu-node-1'] });
      expect(result.success).toBe(false);
      const message = result.error?.issues.map((i) => i.message).join('; ') ?? '';
      expect(message).toContain('unknown argument "nodez"');
      expect(message).toContain('this tool takes');
    },
  );

  it('names every unknown argument (up to five) and lists the real ones', () => {
    const gpuHealth = tools.find((t) => t.name === 'gpu_health');
    const result = gpuHealth?.inputSchema.safeParse({ nodez: ['a'], waitSecs: 5 });
    expect(result?.error?.issues.map((i) => i.message)).toEqual([
      'unknown arguments "nodez", "waitSecs"; this tool takes nodeNames, nodeSelector, policy, namespace, waitSeconds, limit',
    ]);
  });

  it.each(['pod_gpus', 'explain_pod_failure'])(
    '%s: the pod is namespace and name (both required); the diagnostic goes to diagnosticNamespace',
    (name) => {
      const tool = tools.find((t) => t.name === name);
      expect(
        tool?.inputSchema.safeParse({
          namespace: 'ml',
          name: 'trainer-0',
          diagnosticNamespace: 'gpu-ops',
          waitSeconds: 30,
          policy: 'strict',
        }).success,
      ).toBe(true);
      const messages = (a: unknown): string[] => tool?.inputSchema.safeParse(a).error?.issues.map((i) => i.message) ?? [];
      expect(messages({ namespace: 'ml' })).toEqual(['name must be a string']);
      expect(messages({ namespace: 'ml', name: 'Trainer_0' })).toEqual(['name must be an object name (RFC 1123 subdomain)']);
      expect(messages({ namespace: 'ml', name: 'x'.repeat(254) })).toContain('name must be at most 253 characters');
      expect(messages({ namespace: 'ml', name: 'trainer-0', diagnosticNamespace: 'Ops' })).toEqual([
        "diagnosticNamespace must be a namespace name (RFC 1123 label: lower-case letters, digits and '-')",
      ]);
      expect(messages({ namespace: 'ml', name: 'trainer-0', node: 'gpu-1' })).toEqual([
        'unknown argument "node"; this tool takes namespace, name, waitSeconds, policy, diagnosticNamespace',
      ]);
    },
  );
});
