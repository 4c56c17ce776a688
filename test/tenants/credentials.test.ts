import { createServer, connect as tcpConnect, type AddressInfo } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validate } from '../../src/isolation/validator.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform } from '../../src/platform.ts';
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
      const [session] =
        await db`select current_user as user, current_setting('search_path') as path, current_setting('statement_timeout') as timeout,
                                        current_setting('app.current_tenant_id') as tenant`;
      expect(session).toEqual({
        user: body.username,
        path: `${acme.schema}, extensions`,
        timeout: '10s',
        tenant: acme.id,
      });
      // The tenant's own tables, unqualified, with RLS and defaults working as through the API.
      await db`insert into portfolios (name) values ('from psql')`;
      expect((await acme.ok('GET', '/v1/portfolios')).items.map((p: { name: string }) => p.name)).toContain(
        'from psql',
      );
      await expect(db.unsafe(`select * from "${other.schema}".portfolios`)).rejects.toThrow(
        /permission denied for schema/,
      );
      await expect(db`select * from platform.tenants`).rejects.toThrow(/permission denied/);
      await expect(db.unsafe(`set role "${other.schema}_role"`)).rejects.toThrow(/permission denied/);
      await expect(db`create table ${db(acme.schema)}.mine (x int)`).rejects.toThrow(/permission denied/);
      const [limits] =
        await t.su`select rolconnlimit, rolinherit, rolsuper, rolbypassrls, rolcreaterole from pg_roles where rolname = ${body.username}`;
      expect(limits).toEqual({
        rolconnlimit: 10,
        rolinherit: true,
        rolsuper: false,
        rolbypassrls: false,
        rolcreaterole: false,
      });
    } finally {
      await db.end({ timeout: 1 });
    }
  });

  it('never sends the password to the server in plain text (every byte the platform sends, captured)', async () => {
    // A loopback proxy between a second platform instance and the server records every
    // byte the platform sends; that instance issues the login.
    const upstream = new URL(t.db.url);
    const sent: Buffer[] = [];
    const proxy = createServer((client) => {
      const server = tcpConnect(Number(upstream.port), upstream.hostname);
      client.on('data', (chunk) => sent.push(chunk));
      client.pipe(server).on('error', () => client.destroy());
      server.pipe(client).on('error', () => server.destroy());
      client.on('error', () => server.destroy());
    });
    await new Promise<void>((ready) => proxy.listen(0, '127.0.0.1', ready));
    const viaProxy = new URL(t.db.url);
    viaProxy.port = String((proxy.address() as AddressInfo).port);
    viaProxy.searchParams.set('sslmode', 'disable');
    const second = await startPlatform({ ...t.config, databaseUrl: viaProxy.toString() }, createLogger('silent'), {
      runPurgeSweeper: false,
      runValidatorJob: false,
      runLoginWatchdog: false,
    });
    try {
      const login = await second.credentials.rotate(acme.id, { actor: 'test' });
      const wire = Buffer.concat(sent).toString('latin1');
      // Positive control: the capture saw the statement that set the login's password, as a verifier.
      expect(wire).toContain(login.username);
      expect(wire).toMatch(/password 'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'/);
      expect(wire).not.toContain(login.password);
      expect(wire).not.toContain(Buffer.from(login.password).toString('base64'));
      // And the server stored that verifier, which the password opens.
      const [stored] = await t.su`select rolpassword from pg_authid where rolname = ${login.username}`;
      expect(wire).toContain(stored!.rolpassword);
      const db = connect(login.url);
      expect((await db`select 1 as ok`)[0]!.ok).toBe(1);
      await db.end({ timeout: 1 });
    } finally {
      await second.close();
      proxy.close();
    }
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
