import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validate } from '../../src/isolation/validator.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { tenantClient, type TenantClient } from '../support/tenant-client.ts';

let t: TestPlatform;
let acme: TenantClient;
let other: TenantClient;
beforeAll(async () => {
  t = await testPlatform();
  acme = await tenantClient(t, 'acme', 'pro');
  other = await tenantClient(t, 'other');
});
afterAll(() => t?.close());

const connect = (url: string) => postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
const issue = async (tenantId: string) => {
  const res = await t.http(`/v1/tenants/${tenantId}/credentials`, { method: 'POST' });
  return { status: res.status, body: await res.json() };
};

describe('direct database logins', () => {
  it('creates a login pinned to the tenant, with the plan limits', async () => {
    const { status, body } = await issue(acme.id);
    expect(status).toBe(201);
    expect(body).toMatchObject({ username: `${acme.schema}_login`, connectionLimit: 10, statementTimeoutMs: 10_000 });
    expect(body.password.length).toBeGreaterThanOrEqual(32);
    const db = connect(body.url);
    try {
      const [session] = await db`select current_user as user, current_setting('search_path') as path, current_setting('statement_timeout') as timeout,
                                        current_setting('app.current_tenant_id') as tenant`;
      expect(session).toEqual({ user: body.username, path: `${acme.schema}, extensions`, timeout: '10s', tenant: acme.id });
      // The tenant's own tables, unqualified, with RLS and defaults working as through the API.
      await db`insert into portfolios (name) values ('from psql')`;
      expect((await acme.ok('GET', '/v1/portfolios')).items.map((p: { name: string }) => p.name)).toContain('from psql');
      await expect(db.unsafe(`select * from "${other.schema}".portfolios`)).rejects.toThrow(/permission denied for schema/);
      await expect(db`select * from platform.tenants`).rejects.toThrow(/permission denied/);
      await expect(db.unsafe(`set role "${other.schema}_role"`)).rejects.toThrow(/permission denied/);
      await expect(db`create table ${db(acme.schema)}.mine (x int)`).rejects.toThrow(/permission denied/);
      const [limits] = await t.su`select rolconnlimit, rolinherit, rolsuper, rolbypassrls, rolcreaterole from pg_roles where rolname = ${body.username}`;
      expect(limits).toEqual({ rolconnlimit: 10, rolinherit: true, rolsuper: false, rolbypassrls: false, rolcreaterole: false });
    } finally {
      await db.end({ timeout: 1 });
    }
  });

  it('never sends the password to the server in plain text', async () => {
    const { body } = await issue(acme.id);
    const [stored] = await t.su`select rolpassword from pg_authid where rolname = ${body.username}`;
    expect(stored!.rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    const [logged] = await t.su`select count(*)::int as n from pg_stat_statements where query like ${'%' + body.password + '%'}`.catch(() => [{ n: 0 }]);
    expect(logged!.n).toBe(0);
  });

  it('rotates: the old password stops working and its sessions end', async () => {
    const first = (await issue(acme.id)).body;
    const open = connect(first.url);
    await open`select 1`;
    const second = (await issue(acme.id)).body;
    expect(second.password).not.toBe(first.password);
    await expect(open`select 1`).rejects.toThrow();
    await open.end({ timeout: 1 }).catch(() => {});
    const old = connect(first.url);
    await expect(old`select 1`).rejects.toThrow(/password authentication failed/);
    await old.end({ timeout: 1 }).catch(() => {});
    const fresh = connect(second.url);
    expect((await fresh`select 1 as ok`)[0]!.ok).toBe(1);
    await fresh.end({ timeout: 1 });
  });

  it('is shut out when the tenant is suspended and let in again when reactivated', async () => {
    const login = (await issue(other.id)).body;
    await t.http(`/v1/tenants/${other.id}`, { method: 'PATCH', json: { status: 'suspended' } });
    const refused = connect(login.url);
    await expect(refused`select 1`).rejects.toThrow(/not permitted to log in/);
    await refused.end({ timeout: 1 }).catch(() => {});
    expect((await issue(other.id)).status).toBe(409);
    await t.http(`/v1/tenants/${other.id}`, { method: 'PATCH', json: { status: 'active' } });
    const back = connect(login.url);
    expect((await back`select 1 as ok`)[0]!.ok).toBe(1);
    await back.end({ timeout: 1 });
  });

  it('leaves the platform clean for the isolation validator', async () => {
    await issue(acme.id);
    const report = await validate(t.control);
    expect(report.violations).toEqual([]);
  });

  it('is dropped with the tenant on purge', async () => {
    const gone = await tenantClient(t, 'gone');
    const login = (await issue(gone.id)).body;
    await t.http(`/v1/tenants/${gone.id}?purge=true`, { method: 'DELETE' });
    expect(await t.su`select 1 from pg_roles where rolname = ${login.username}`).toHaveLength(0);
  });
});
