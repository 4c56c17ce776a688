/**
 * A benchmark tenant: provisioned and keyed through the admin API, with helpers to call
 * the data plane and to reach its schema directly as the owner (for baselines).
 */
import type { TenantContext } from '../../src/db/with-tenant.ts';
import { tenantRoleName } from '../../src/db/names.ts';
import { PLANS } from '../../src/tenants/plans.ts';
import type { BenchEnvironment } from './environment.ts';

export type BenchTenant = {
  id: string;
  schema: string;
  context: TenantContext;
  /** Calls the data plane; throws unless the answer is 2xx. */
  api(method: string, path: string, json?: unknown): Promise<any>;
  headers: Record<string, string>;
};

export async function benchTenant(env: BenchEnvironment, slug: string): Promise<BenchTenant> {
  const admin = { authorization: `Bearer ${env.adminToken}`, 'content-type': 'application/json' };
  const res = await fetch(`${env.baseUrl}/v1/tenants`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ slug, name: slug, plan: 'enterprise' }),
  });
  const created = await res.json();
  if (res.status !== 201) throw new Error(`creating tenant ${slug} answered ${res.status}: ${JSON.stringify(created)}`);
  const { key } = await (
    await fetch(`${env.baseUrl}/v1/tenants/${created.id}/keys`, { method: 'POST', headers: admin, body: '{}' })
  ).json();
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  return {
    id: created.id,
    schema: created.schema,
    context: {
      id: created.id,
      schema: created.schema,
      role: tenantRoleName(created.schema),
      statementTimeoutMs: PLANS.enterprise.statementTimeoutMs,
      chunkQuota: PLANS.enterprise.chunkQuota,
    },
    headers,
    api: async (method, path, json) => {
      const res = await fetch(`${env.baseUrl}${path}`, {
        method,
        headers,
        body: json === undefined ? undefined : JSON.stringify(json),
      });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
      return text ? JSON.parse(text) : null;
    },
  };
}
