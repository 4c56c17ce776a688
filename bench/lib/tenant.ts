/**
 * A benchmark tenant: provisioned and keyed through the admin API, with helpers to call
 * the data plane and to reach its schema directly as the owner (for baselines).
 */
import { Agent, request } from 'node:http';
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
      const { status, text } = await call(new URL(path, env.baseUrl), method, headers, json);
      if (status >= 300) throw new Error(`${method} ${path} answered ${status}: ${text.slice(0, 300)}`);
      return text ? JSON.parse(text) : null;
    },
  };
}

// node:http on kept-alive sockets, as the fixed-rate load (lib/load.ts) uses: on this
// 2-core machine `fetch` added 2 ms to a search's p50 and more to its tail, the client's
// cost rather than the service's.
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function call(
  url: URL,
  method: string,
  headers: Record<string, string>,
  json: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, method, host: url.hostname, port: url.port, path: url.pathname + url.search, headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (part: string) => (text += part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(json === undefined ? undefined : JSON.stringify(json));
  });
}
