import { describe, expect, it } from '@jest/globals';
import { DEFAULT_XID_LOOKBACK_MS, parseSnapshotQuery } from './http-api.js';

const now = new Date('2025-01-05T12:00:00Z');
const parse = (query: string): ReturnType<typeof parseSnapshotQuery> => parseSnapshotQuery(new URLSearchParams(query), now);

describe('parseSnapshotQuery', () => {
  it('defaults to health and xid over the last hour', () => {
    expect(parse('')).toEqual({
      ok: true,
      query: { checks: ['health', 'xid'], xidSince: new Date(now.getTime() - DEFAULT_XID_LOOKBACK_MS) },
    });
  });

  it('accepts checks and an RFC 3339 xidSince with offset', () => {
    expect(parse('checks=inventory,xid,inventory&xidSince=2025-01-05T10:00:00%2B01:00')).toEqual({
      ok: true,
      query: { checks: ['inventory', 'xid'], xidSince: new Date('2025-01-05T09:00:00Z') },
    });
  });

  it.each([
    ['checks=voltage', 'query parameter "checks": unknown check "voltage"'],
    ['checks=', 'query parameter "checks": unknown check ""'],
    ['xidSince=yesterday', 'query parameter "xidSince" must be an RFC 3339 time'],
    ['xidSince=2025-13-45T99:00:00Z', 'query parameter "xidSince" must be an RFC 3339 time'],
    ['node=gpu-1', 'unknown query parameter "node"'],
    ['checks=health&checks=xid', 'query parameter "checks" given more than once'],
  ])('rejects %s with a message naming the parameter', (query, message) => {
    const parsed = parse(query);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.message).toContain(message);
  });
});
