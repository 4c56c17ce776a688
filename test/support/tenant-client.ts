/**
 * A tenant as a trading app sees it: provisioned through the admin API, with an API key,
 * calling the data plane.
 *
 * @example
 * const acme = await tenantClient(t, 'acme');
 * const portfolio = await acme.ok('POST', '/v1/portfolios', { name: 'Main' });
 */
import { expect } from 'vitest';
import type { TestPlatform } from './platform.ts';

export type TenantClient = {
  id: string;
  schema: string;
  key: string;
  call(method: string, path: string, json?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  /** Like call, but expects a 2xx and returns the body. */
  ok(method: string, path: string, json?: unknown): Promise<any>;
};

export async function tenantClient(t: TestPlatform, slug: string, plan = 'pro'): Promise<TenantClient> {
  const created = await t.http('/v1/tenants', { method: 'POST', json: { slug, name: slug, plan } });
  const tenant = await created.json();
  expect(created.status, JSON.stringify(tenant)).toBe(201);
  const issued = await t.http(`/v1/tenants/${tenant.id}/keys`, { method: 'POST', json: { name: 'tests' } });
  const { key } = await issued.json();
  const call = async (method: string, path: string, json?: unknown) => {
    const res = await t.http(path, { method, token: key, json });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
  return {
    id: tenant.id,
    schema: tenant.schema,
    key,
    call,
    ok: async (method, path, json) => {
      const res = await call(method, path, json);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
      return res.body;
    },
  };
}

/** A deterministic 384-dimension vector. */
export function vector(seed: number, dimensions = 384): number[] {
  return Array.from({ length: dimensions }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233));
}
