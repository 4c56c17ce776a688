import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labels, MetricsText } from '../../src/http/prometheus.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';

let t: TestPlatform;
beforeAll(async () => {
  t = await testPlatform();
});
afterAll(() => t?.close());

async function scrape(): Promise<{ text: string; value: (sample: string) => number | undefined }> {
  const res = await t.http('/metrics');
  expect(res.status).toBe(200);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ');
    if (line.startsWith('tenantforge_')) values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { text, value: (sample) => values.get(sample) };
}

describe('request metrics on /metrics', () => {
  it('count requests by route template and status, and time them in a histogram', async () => {
    for (let i = 0; i < 3; i++) expect((await t.http('/healthz', { token: null })).status).toBe(200);
    expect((await t.http('/no/such/route-abc123', { token: null })).status).toBe(404);
    expect((await t.http('/v1/tenants', { token: null })).status).toBe(401);
    expect((await t.http('/v1/tenants/nobody-here')).status).toBe(404);
    expect((await t.http('/v1/trades:batch', { method: 'POST', token: null, json: {} })).status).toBe(401);

    const { text, value } = await scrape();
    const requests = (method: string, route: string, status: number) =>
      value(`tenantforge_http_requests_total{method="${method}",route="${route}",status="${status}"}`);
    expect(requests('GET', '/healthz', 200)).toBe(3);
    expect(requests('GET', '/v1/tenants', 401)).toBe(1);
    // Labelled by the template, as the OpenAPI document writes it, never by what was sent.
    expect(requests('GET', '/v1/tenants/{idOrSlug}', 404)).toBe(1);
    expect(requests('GET', 'unmatched', 404)).toBe(1);
    expect(requests('POST', '/v1/trades:batch', 401)).toBe(1);
    expect(text).not.toContain('route-abc123');
    expect(text).not.toContain('nobody-here');

    const bucket = (le: string) =>
      value(`tenantforge_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="${le}"}`)!;
    const les = [
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '+Inf',
    ];
    const cumulative = les.map(bucket);
    expect(cumulative).toEqual([...cumulative].sort((a, b) => a - b));
    expect(cumulative.at(-1)).toBe(3);
    expect(value('tenantforge_http_request_duration_seconds_count{method="GET",route="/healthz"}')).toBe(3);
    expect(value('tenantforge_http_request_duration_seconds_sum{method="GET",route="/healthz"}')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE tenantforge_http_requests_total counter');
    expect(text).toContain('# TYPE tenantforge_http_request_duration_seconds histogram');
  });

  it('the text writer escapes label values and leaves out samples without a value', () => {
    expect(labels({ a: 'x"y\\z\nw' })).toBe('{a="x\\"y\\\\z\\nw"}');
    expect(labels({})).toBe('');
    const text = new MetricsText().gauge('m', 'A metric.', [
      ['{k="1"}', 2],
      ['{k="2"}', null],
      ['{k="3"}', undefined],
    ]);
    expect(text.toString()).toBe('# HELP m A metric.\n# TYPE m gauge\nm{k="1"} 2\n');
  });
});
