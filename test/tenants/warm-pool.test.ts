import postgres from 'postgres';
import { runtimeRoleOf, runtimeRoleOfSql } from '../../src/db/names.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { withTenant } from '../../src/db/with-tenant.ts';
import { createApp } from '../../src/app.ts';
import { TEMPLATE_VERSION_SQL, templateVersionOf } from '../../src/migrations/files.ts';
import { validate } from '../../src/isolation/validator.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform, type Platform } from '../../src/platform.ts';
import { PLANS } from '../../src/tenants/plans.ts';
import { testConfig, testPlatform, type TestPlatform } from '../support/platform.ts';
import { shape } from '../support/shape.ts';

/** Instance A: a warm pool of up to 100, filled by the tests themselves (no background refill). */
let t: TestPlatform;
/** Instance B: a second service on the same database (same schema secret and admin token). */
let b: Platform;
let bApp: ReturnType<typeof createApp>;

beforeAll(async () => {
  t = await testPlatform({
    env: { TENANTFORGE_WARM_POOL: '100', TENANTFORGE_VALIDATOR_INTERVAL: 'off' },
    runWarmPoolRefill: false,
  });
  const config = testConfig(t.db.url, {
    TENANTFORGE_WARM_POOL: '100',
    TENANTFORGE_VALIDATOR_INTERVAL: 'off',
    TENANTFORGE_SCHEMA_SECRET: t.config.schemaSecret!,
  });
  b = await startPlatform(config, createLogger('silent'), {
    runPurgeSweeper: false,
    runBackupWorker: false,
    runBackupScheduler: false,
    runWarmPoolRefill: false,
  });
  bApp = createApp(b);
});
afterAll(async () => {
  await b?.close();
  await t?.close();
});

const create = (json: unknown, headers: Record<string, string> = {}, via: 'a' | 'b' = 'a') =>
  via === 'a'
    ? t.http('/v1/tenants', { method: 'POST', json, headers })
    : Promise.resolve(
        bApp.request('/v1/tenants', {
          method: 'POST',
          headers: { authorization: `Bearer ${b.adminToken}`, 'content-type': 'application/json', ...headers },
          body: JSON.stringify(json),
        }),
      );

/** Tops the pool up to `n` (one tenant per call, as the refill does). */
async function fill(n: number): Promise<void> {
  while ((await t.warmPool.topUpOne(n)) !== 'full');
}

async function pooledIds(): Promise<string[]> {
  const rows = await t.su<{ id: string }[]>`select id::text from platform.tenants where status = 'pooled' order by id`;
  return rows.map((r) => r.id);
}

async function schemaCount(): Promise<number> {
  const [row] = await t.su<
    { n: number }[]
  >`select count(*)::int as n from pg_namespace where nspname like 'tenant\\_%'`;
  return row!.n;
}

async function runtimeMember(role: string): Promise<boolean> {
  const [row] = await t.su<{ member: boolean }[]>`
    select exists (select 1 from pg_auth_members m where m.roleid = ${role}::regrole and m.member = ${runtimeRoleOf(role)}::regrole) as member`;
  return row!.member;
}

describe('claims', () => {
  it('100 concurrent creates across two service instances each get a distinct pooled tenant', async () => {
    await fill(100);
    const pooled = await pooledIds();
    expect(pooled).toHaveLength(100);
    const schemasBefore = await schemaCount();

    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        create({ slug: `claim-${i}`, name: `Claim ${i}`, plan: 'pro' }, {}, i % 2 ? 'b' : 'a'),
      ),
    );
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(responses.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
    const ids = bodies.map((body) => body.id as string);
    // Every caller a different tenant, and every one of them came from the pool: no clone ran.
    expect(new Set(ids).size).toBe(100);
    expect([...ids].sort()).toEqual(pooled);
    expect(await schemaCount()).toBe(schemasBefore);
    expect(await pooledIds()).toEqual([]);

    const rows = await t.su<{ id: string; slug: string; status: string; plan: string; role_name: string }[]>`
      select id::text, slug, status, plan, role_name from platform.tenants where id = any(${ids}::uuid[])`;
    for (const [i, id] of ids.entries()) {
      const row = rows.find((r) => r.id === id)!;
      expect(row).toMatchObject({ slug: `claim-${i}`, status: 'active', plan: 'pro' });
    }
    const [members] = await t.su<{ n: number }[]>`
      select count(*)::int as n from pg_auth_members m join pg_roles r on r.oid = m.roleid
      join pg_roles l on l.oid = m.member
      where r.rolname = any(${rows.map((r) => r.role_name)}::text[]) and l.rolname = ${t.su.unsafe(runtimeRoleOfSql('r.rolname'))}`;
    expect(members!.n).toBe(100);
    const [audit] = await t.su<{ n: number }[]>`
      select count(*)::int as n from platform.audit_log
      where action = 'tenant.create' and outcome = 'succeeded' and (detail->>'warmPool')::boolean and tenant_id = any(${ids}::uuid[])`;
    expect(audit!.n).toBe(100);
  });

  it('a claimed tenant is exactly like a cloned one: structure, grants, membership, ledger, answer, plan limits', async () => {
    await fill(1);
    const started = Date.now();
    const claimedRes = await create({ slug: 'was-pooled', name: 'Was Pooled', plan: 'pro' });
    // The pool is empty now: this one is cloned.
    const clonedRes = await create({ slug: 'was-cloned', name: 'Was Cloned', plan: 'pro' });
    expect([claimedRes.status, clonedRes.status]).toEqual([201, 201]);
    const claimed = await claimedRes.json();
    const cloned = await clonedRes.json();
    const [how] = await t.su<{ claimed: boolean; cloned: boolean }[]>`
      select bool_or((detail->>'warmPool')::boolean) filter (where tenant_id = ${claimed.id}) as claimed,
             coalesce(bool_or((detail->>'warmPool')::boolean) filter (where tenant_id = ${cloned.id}), false) as cloned
      from platform.audit_log where action = 'tenant.create'`;
    expect(how).toEqual({ claimed: true, cloned: false });

    // The answer: same fields, same kinds of values; created "now", not when it was pooled.
    expect(Object.keys(claimed).sort()).toEqual(Object.keys(cloned).sort());
    expect(claimedRes.headers.get('location')).toBe(`/v1/tenants/${claimed.id}`);
    expect(claimed).toMatchObject({ slug: 'was-pooled', name: 'Was Pooled', plan: 'pro', status: 'active' });
    expect(Date.parse(claimed.createdAt)).toBeGreaterThanOrEqual(started - 1_000);
    expect(claimed.createdAt).toBe(claimed.updatedAt);
    expect(typeof claimed.provisioningMs).toBe('number');

    // The schema, as the structural test compares a clone with the template.
    const template = await shape(t.su, 'tf_template');
    expect(await shape(t.su, claimed.schema)).toEqual(template);
    expect(await shape(t.su, claimed.schema)).toEqual(await shape(t.su, cloned.schema));

    // Grants (the role name normalised), role attributes, runtime membership, ledger, version.
    const privileges = async (schema: string) =>
      t.su`
        select c.relname, replace(coalesce(g.rolname, 'PUBLIC'), ${schema}, 'S') as grantee,
               string_agg(a.privilege_type, ',' order by a.privilege_type) as privileges
        from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
        left join pg_roles g on g.oid = a.grantee
        where n.nspname = ${schema} and c.relkind in ('r', 'p') and c.relname not like '\\_hyper%'
        group by 1, 2 order by 1, 2`;
    expect(await privileges(claimed.schema)).toEqual(await privileges(cloned.schema));
    const role = async (schema: string) =>
      (
        await t.su`select rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolbypassrls from pg_roles where rolname = ${`${schema}_role`}`
      )[0];
    expect(await role(claimed.schema)).toEqual(await role(cloned.schema));
    expect(await runtimeMember(`${claimed.schema}_role`)).toBe(true);
    const ledger = async (id: string) =>
      t.su`select name, checksum from platform.tenant_migrations where tenant_id = ${id} order by name`;
    expect(await ledger(claimed.id)).toEqual(await ledger(cloned.id));
    const versions =
      await t.su`select template_version from platform.tenants where id in (${claimed.id}, ${cloned.id})`;
    expect(new Set(versions.map((v) => v.template_version)).size).toBe(1);

    // The plan's limits reach the data plane exactly as for a clone.
    for (const tenant of [claimed, cloned]) {
      const issued = await t.http(`/v1/tenants/${tenant.id}/keys`, { method: 'POST', json: { name: 'k' } });
      const { key } = await issued.json();
      const context = await t.keys.authenticate(key);
      expect(context).toMatchObject({
        id: tenant.id,
        statementTimeoutMs: PLANS.pro.statementTimeoutMs,
        chunkQuota: PLANS.pro.chunkQuota,
      });
      const made = await t.http('/v1/portfolios', { method: 'POST', token: key, json: { name: 'Main' } });
      expect(made.status).toBe(201);
      const listed = await (await t.http('/v1/portfolios', { token: key })).json();
      expect(listed.items.map((p: { name: string }) => p.name)).toEqual(['Main']);
    }
  });

  it('keeps Idempotency-Key semantics: a retry replays the claimed tenant, a reused key with another body is refused', async () => {
    await fill(2);
    const first = await create({ slug: 'idem-pool', name: 'Idem' }, { 'idempotency-key': 'pool-key-1' });
    const again = await create({ slug: 'idem-pool', name: 'Idem' }, { 'idempotency-key': 'pool-key-1' }, 'b');
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await again.json()).id).toBe((await first.json()).id);
    expect(await pooledIds()).toHaveLength(1);
    const other = await create({ slug: 'idem-pool-2', name: 'Idem' }, { 'idempotency-key': 'pool-key-1' });
    expect(other.status).toBe(422);
    expect((await other.json()).code).toBe('idempotency_key_reused');
    expect(await pooledIds()).toHaveLength(1);
  });

  it('10 concurrent creates with one Idempotency-Key on two instances make one tenant, from the pool', async () => {
    await fill(3);
    const before = await pooledIds();
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        create({ slug: 'idem-race', name: 'Race' }, { 'idempotency-key': 'pool-race' }, i % 2 ? 'b' : 'a'),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
    const ids = new Set(await Promise.all(responses.map(async (r) => (await r.json()).id)));
    expect(ids.size).toBe(1);
    expect(before).toContain([...ids][0]);
    expect(await pooledIds()).toHaveLength(before.length - 1);
  });

  it("the server's template version (used by the claim) is the service's own", async () => {
    const [row] = await t.su<{ version: string }[]>`select ${t.su.unsafe(TEMPLATE_VERSION_SQL)} as version`;
    const ledger = await t.su<{ name: string; checksum: string }[]>`
      select name, checksum from platform.template_migrations order by name`;
    expect(ledger.length).toBeGreaterThan(0);
    expect(row!.version).toBe(templateVersionOf(ledger));
  });

  it('a taken slug is a 409 and the pooled tenant stays in the pool, untouched', async () => {
    await fill(1);
    const before = await pooledIds();
    const res = await create({ slug: 'was-pooled', name: 'Again' });
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect((await res.json()).code).toBe('slug_taken');
    expect(await pooledIds()).toEqual(before);
    const [row] = await t.su`select slug, name, status from platform.tenants where id = ${before[0]!}`;
    expect(row).toEqual({ slug: null, name: null, status: 'pooled' });
    expect(
      await runtimeMember(
        `${(await t.su`select schema_name from platform.tenants where id = ${before[0]!}`)[0]!.schema_name}_role`,
      ),
    ).toBe(false);
  });

  it('a restore never claims: it loads rows before the grants exist, so it clones', async () => {
    // The restore path passes a loader; the service sends such a create to the clone path.
    await fill(1);
    const before = await pooledIds();
    const { tenant } = await t.tenants.create(
      { slug: 'restored-like', name: 'r', plan: 'free' },
      { actor: 'test' },
      undefined,
      {
        load: async () => ({ rows: 0 }),
      },
    );
    expect(before).not.toContain(tenant.id);
    expect(await pooledIds()).toEqual(before);
  });
});

describe("a pooled tenant is nobody's", () => {
  let pooled: { id: string; schema_name: string; role_name: string };
  beforeAll(async () => {
    await fill(1);
    const rows = await t.su<{ id: string; schema_name: string; role_name: string }[]>`
      select id::text, schema_name, role_name from platform.tenants where status = 'pooled' limit 1`;
    pooled = rows[0]!;
  });

  it('is unknown to every admin API (so no key or login can be issued for it) and absent from lists', async () => {
    for (const [method, path, json] of [
      ['GET', `/v1/tenants/${pooled.id}`, undefined],
      ['PATCH', `/v1/tenants/${pooled.id}`, { status: 'active' }],
      ['DELETE', `/v1/tenants/${pooled.id}`, undefined],
      ['POST', `/v1/tenants/${pooled.id}/keys`, { name: 'x' }],
      ['GET', `/v1/tenants/${pooled.id}/keys`, undefined],
      ['POST', `/v1/tenants/${pooled.id}/credentials`, undefined],
    ] as const) {
      const res = await t.http(path, { method, json });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('content-type'), `${method} ${path}`).toContain('application/problem+json');
    }
    const listed = await (await t.http('/v1/tenants?limit=500')).json();
    expect(listed.items.map((x: { id: string }) => x.id)).not.toContain(pooled.id);
    expect(listed.items.every((x: { slug: string | null }) => typeof x.slug === 'string')).toBe(true);
    const [keys] = await t.su<
      { n: number }[]
    >`select count(*)::int as n from platform.api_keys where tenant_id = ${pooled.id}`;
    expect(keys!.n).toBe(0);
    const [row] = await t.su`select status from platform.tenants where id = ${pooled.id}`;
    expect(row!.status).toBe('pooled');
  });

  it('is unreachable by the runtime role: no membership, so SET ROLE and withTenant fail', async () => {
    expect(await runtimeMember(pooled.role_name)).toBe(false);
    await expect(
      t.app.forTenant(pooled.role_name).begin((tx) => tx.unsafe(`set local role "${pooled.role_name}"`)),
    ).rejects.toThrow(/permission denied/);
    await expect(
      withTenant(
        t.app,
        {
          id: pooled.id,
          schema: pooled.schema_name,
          role: pooled.role_name,
          statementTimeoutMs: 1_000,
          chunkQuota: 10,
        },
        (tx) => tx`select count(*) from portfolios`,
      ),
    ).rejects.toThrow(/is not accessible/);
    await expect(
      t.app.forTenant(pooled.role_name).unsafe(`select * from "${pooled.schema_name}".portfolios`),
    ).rejects.toThrow(/permission denied/);
  });

  it('cannot be logged in to: its role is NOLOGIN and it has no login role until claimed', async () => {
    const [roleRow] = await t.su`select rolcanlogin from pg_roles where rolname = ${pooled.role_name}`;
    expect(roleRow!.rolcanlogin).toBe(false);
    const [login] =
      await t.su`select count(*)::int as n from pg_roles where rolname = ${`${pooled.schema_name}_login`}`;
    expect(login!.n).toBe(0);
    const url = new URL(t.db.url);
    url.username = pooled.role_name;
    url.password = 'anything-at-all';
    const direct = postgres(url.toString(), { max: 1, connect_timeout: 5, onnotice: () => {} });
    try {
      await expect(direct`select 1`).rejects.toThrow(/password authentication failed|not permitted to log in/);
    } finally {
      await direct.end();
    }
  });

  it('once claimed, gets a direct login like any tenant', async () => {
    const before = await pooledIds();
    const res = await create({ slug: 'claimed-login', name: 'Login' });
    const tenant = await res.json();
    expect(before).toContain(tenant.id);
    const cred = await t.http(`/v1/tenants/${tenant.id}/credentials`, { method: 'POST' });
    expect(cred.status).toBe(201);
    const db = postgres((await cred.json()).url, { max: 1, connect_timeout: 5, onnotice: () => {} });
    try {
      const [row] =
        await db`select count(*)::int as n, current_setting('app.current_tenant_id') as tenant from portfolios`;
      expect(row).toEqual({ n: 0, tenant: tenant.id });
    } finally {
      await db.end();
    }
  });

  it('is checked by the validator like any tenant: not an orphan, clean, and reported if the runtime role can reach it', async () => {
    await fill(2);
    const report = await validate(t.control);
    expect(report.violations).toEqual([]);
    const [p] = await t.su<{ id: string; role_name: string }[]>`
      select id::text, role_name from platform.tenants where status = 'pooled' limit 1`;
    await t.su.unsafe(`grant "${p!.role_name}" to ${runtimeRoleOf(p!.role_name)}`);
    const broken = await validate(t.control);
    expect(broken.violations).toEqual([
      expect.objectContaining({
        check: 'role_membership',
        tenantId: p!.id,
        tenantSlug: '(pooled)',
        object: p!.role_name,
      }),
    ]);
    const fixed = await validate(t.control, { fix: true });
    expect(fixed.outcome).toBe('clean');
    expect(await runtimeMember(p!.role_name)).toBe(false);
  });
});

describe('empty pool and pool size 0', () => {
  it('an empty pool falls back to cloning', async () => {
    // Drain whatever earlier tests left pooled.
    for (const [i] of (await pooledIds()).entries()) await create({ slug: `drain-${i}`, name: 'd' });
    expect(await pooledIds()).toEqual([]);
    const before = await schemaCount();
    const res = await create({ slug: 'cold-one', name: 'Cold' });
    expect(res.status).toBe(201);
    expect(await schemaCount()).toBe(before + 1);
    expect((await res.json()).status).toBe('active');
  });

  it('TENANTFORGE_WARM_POOL: 10 by default, 0 turns it off, anything else is refused by name', () => {
    expect(loadConfig({}).warmPool).toBe(10);
    expect(loadConfig({ TENANTFORGE_WARM_POOL: '0' }).warmPool).toBe(0);
    expect(loadConfig({ TENANTFORGE_WARM_POOL: '25' }).warmPool).toBe(25);
    for (const bad of ['-1', 'lots', '1.5', '5000'])
      expect(() => loadConfig({ TENANTFORGE_WARM_POOL: bad })).toThrow(ConfigError);
    expect(() => loadConfig({ TENANTFORGE_WARM_POOL: 'lots' })).toThrow(/TENANTFORGE_WARM_POOL="lots"/);
  });

  it('pool size 0 never refills, and never claims a tenant left in the pool', async () => {
    const off = await startPlatform(
      testConfig(t.db.url, {
        TENANTFORGE_WARM_POOL: '0',
        TENANTFORGE_VALIDATOR_INTERVAL: 'off',
        TENANTFORGE_SCHEMA_SECRET: t.config.schemaSecret!,
      }),
      createLogger('silent'),
      {
        runPurgeSweeper: false,
        runBackupWorker: false,
        runBackupScheduler: false,
        warmPoolRefill: { intervalMs: 20, quietMs: 0 },
      },
    );
    try {
      await fill(1);
      const before = await pooledIds();
      expect(await off.warmPool.topUpOne()).toBe('full');
      await new Promise((r) => setTimeout(r, 500));
      expect(await pooledIds()).toEqual(before);
      const { tenant } = await off.tenants.create({ slug: 'off-one', name: 'o', plan: 'free' }, { actor: 'test' });
      expect(before).not.toContain(tenant.id);
      expect(await pooledIds()).toEqual(before);
    } finally {
      await off.close();
    }
  });
});
