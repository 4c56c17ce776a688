/**
 * Attacks beyond the matrix: spoofing the tenant setting, stale settings on pooled
 * connections, a tenant trying to switch its RLS off, chunks read by name, vector
 * searches reaching for another tenant's embeddings, and hostile names at provisioning.
 * Also what is knowingly not isolated (catalog names), asserted so it cannot widen
 * unnoticed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { installPlatform } from '../../src/db/install.ts';
import { runtimeRoleOf } from '../../src/db/names.ts';
import { RUNTIME_ROLES } from '../../src/db/roles.ts';
import { withTenant } from '../../src/db/with-tenant.ts';
import { inspect, validate } from '../../src/isolation/validator.ts';
import type { Tx } from '../../src/db/connect.ts';
import { renderClonePlan } from '../../src/provisioning/clone-plan.ts';
import {
  assertTenantRoleName,
  assertTenantSchemaName,
  InvalidTenantNameError,
  tenantSchemaName,
} from '../../src/db/names.ts';
import { createTenantInput } from '../../src/tenants/schemas.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { chunkOf, loginFor, newTenant, seed, vector, type Login, type TestTenant } from './support.ts';

let t: TestPlatform;
let a: TestTenant;
let b: TestTenant;
let asA: Login;
let asB: Login;

beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off' } });
  a = await newTenant(t, 'attack-a');
  b = await newTenant(t, 'attack-b');
  await seed(t, a, 1);
  await seed(t, b, 0);
  asA = await loginFor(t, a);
  asB = await loginFor(t, b);
});
afterAll(async () => {
  await asA?.drop();
  await asB?.drop();
  await t?.close();
});

const ROLLBACK = new Error('rollback');

/** Runs `steps` on `sql` (with a tenant setting, if given) in a transaction that is rolled back; returns the last result. */
async function tryAs(login: Login, tenantId: string | null, ...steps: string[]): Promise<Record<string, unknown>[]> {
  let result: Record<string, unknown>[] = [];
  await login.sql
    .begin(async (tx) => {
      if (tenantId) await tx`select set_config('app.current_tenant_id', ${tenantId}, true)`;
      for (const step of steps) result = [...(await tx.unsafe(step))];
      throw ROLLBACK;
    })
    .catch((err) => {
      if (err !== ROLLBACK) throw err;
    });
  return result;
}

const q = (tenant: TestTenant, table: string) => `"${tenant.schema}".${table}`;

describe('spoofing app.current_tenant_id', () => {
  it.each([
    ['set_config, transaction-scoped', (id: string) => `select set_config('app.current_tenant_id', '${id}', true)`],
    ['set_config, session-scoped', (id: string) => `select set_config('app.current_tenant_id', '${id}', false)`],
    ['SET', (id: string) => `set app.current_tenant_id = '${id}'`],
    ['SET LOCAL', (id: string) => `set local app.current_tenant_id = '${id}'`],
  ])("with %s, tenant A sees none of its rows and still none of B's", async (_, spoof) => {
    for (const table of ['portfolios', 'trades', 'market_data', 'embeddings']) {
      expect(await tryAs(asA, a.id, spoof(b.id), `select * from ${q(a, table)}`)).toEqual([]);
      await expect(tryAs(asA, a.id, spoof(b.id), `select * from ${q(b, table)}`)).rejects.toMatchObject({
        code: '42501',
      });
    }
  });

  it("refuses a row claiming another tenant's id (WITH CHECK)", async () => {
    await expect(
      tryAs(asA, a.id, `insert into ${q(a, 'portfolios')} (tenant_id, name) values ('${b.id}', 'x')`),
    ).rejects.toMatchObject({
      code: '42501',
      message: expect.stringContaining('row-level security'),
    });
    await expect(tryAs(asA, a.id, `update ${q(a, 'portfolios')} set tenant_id = '${b.id}'`)).rejects.toMatchObject({
      code: '42501',
    });
  });

  it("a row written under a spoofed id lands in A's own schema: B never sees it", async () => {
    await asA.sql.begin(async (tx) => {
      await tx`select set_config('app.current_tenant_id', ${b.id}, true)`;
      await tx.unsafe(`insert into ${q(a, 'portfolios')} (name) values ('planted')`);
    });
    try {
      const seenByB = await withTenant(
        t.app,
        b.context,
        (tx) => tx`select name from portfolios where name = 'planted'`,
      );
      expect(seenByB).toEqual([]);
      expect(await tryAs(asB, b.id, `select name from ${q(b, 'portfolios')} where name = 'planted'`)).toEqual([]);
    } finally {
      await t.su.unsafe(`delete from ${q(a, 'portfolios')} where name = 'planted'`);
    }
  });
});

describe('runtime lanes', () => {
  it("a lane's connections can act as the tenants of that lane only", async () => {
    let other = b;
    for (let i = 0; runtimeRoleOf(other.role) === runtimeRoleOf(a.role); i++)
      other = await newTenant(t, `attack-lane-${i}`);
    const lane = t.app.forTenant(a.role);
    await expect(lane.begin((tx) => tx.unsafe(`set local role "${other.role}"`))).rejects.toThrow(
      `permission denied to set role "${other.role}"`,
    );
    // withTenant takes the connection from the tenant's own lane, so both are reachable through it.
    for (const tenant of [a, other]) {
      const [row] = await withTenant(
        t.app,
        tenant.context,
        (tx) => tx`select session_user as lane, current_user as role`,
      );
      expect(row).toEqual({ lane: runtimeRoleOf(tenant.role), role: tenant.role });
    }
  });

  it('start-up moves an earlier release runtime role memberships to the lanes and takes its login', async () => {
    const roles = ['0', '9', 'f'].map((d) => `tenant_${d}${randomBytes(9).toString('hex')}_role`);
    await t.su.unsafe(
      `do $$ begin if not exists (select from pg_roles where rolname = 'tf_app') then create role tf_app login; end if; end $$`,
    );
    await t.su.unsafe(roles.map((r) => `create role "${r}" nologin; grant "${r}" to tf_app`).join('; '));
    try {
      // The run's own password: lane roles are cluster-wide, shared by every test file's platform.
      await installPlatform(t.su, { appPassword: t.config.appPassword! });
      const members = await t.su<{ role: string; member: string }[]>`
        select r.rolname as role, l.rolname as member
        from pg_auth_members m join pg_roles r on r.oid = m.roleid join pg_roles l on l.oid = m.member
        where r.rolname = any(${roles})`;
      expect(members.map((m) => [m.role, m.member]).sort()).toEqual(roles.map((r) => [r, runtimeRoleOf(r)]).sort());
      const [legacy] = await t.su<
        { login: boolean }[]
      >`select rolcanlogin as login from pg_roles where rolname = 'tf_app'`;
      expect(legacy!.login).toBe(false);
    } finally {
      await t.su.unsafe(roles.map((r) => `drop role "${r}"`).join('; '));
    }
  });

  it('each lane role is a member of exactly the active tenant roles of its lane', async () => {
    const rows = await t.su<{ lane: string; tenant_role: string }[]>`
      select l.rolname as lane, r.rolname as tenant_role
      from pg_auth_members m join pg_roles l on l.oid = m.member join pg_roles r on r.oid = m.roleid
      where l.rolname = any(${RUNTIME_ROLES}) and r.rolname in (select role_name from platform.tenants)`;
    const active = await t.su<{ role_name: string }[]>`
      select role_name from platform.tenants where status = 'active'`;
    expect(rows.map((r) => [r.lane, r.tenant_role]).sort()).toEqual(
      active.map((r) => [runtimeRoleOf(r.role_name), r.role_name]).sort(),
    );
  });
});

describe('the runtime pool after a tenant transaction', () => {
  async function reusedConnectionState(served: Set<number>) {
    const conn = await t.app.forTenant(a.role).reserve();
    try {
      const [state] = await conn<{ pid: number; role: string; tenant: string; path: string }[]>`
        select pg_backend_pid() as pid, current_user as role, current_setting('app.current_tenant_id', true) as tenant,
               current_setting('search_path') as path`;
      expect(served.has(state!.pid), 'the pool handed back a connection that just served tenant A').toBe(true);
      // Even after switching into A's role on this connection, the stale setting matches no row.
      await conn`begin`;
      await conn.unsafe(`set local role "${a.role}"`);
      const visible = await conn.unsafe(`select count(*)::int as n from ${q(a, 'portfolios')}`);
      await conn`rollback`;
      const denied = await conn.unsafe(`select 1 from ${q(a, 'portfolios')}`).then(
        () => 'allowed',
        (err) => err.code,
      );
      return { ...state!, visibleAfterSetRole: visible[0]!.n, withoutRole: denied };
    } finally {
      conn.release();
    }
  }

  it('carries no tenant: role back to its lane role, setting empty, no rows visible, never another tenant', async () => {
    const served = new Set<number>();
    for (let i = 0; i < 3; i++) {
      served.add(
        await withTenant(
          t.app,
          a.context,
          async (tx) => (await tx<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid,
        ),
      );
    }
    expect(await reusedConnectionState(served)).toMatchObject({
      role: runtimeRoleOf(a.role),
      tenant: '',
      visibleAfterSetRole: 0,
      withoutRole: '42501',
    });
  });

  it('inside withTenant: the tenant role, its schema first on the search path, its id, its timeouts, read only when asked', async () => {
    const inside = await withTenant(
      t.app,
      a.context,
      async (tx) =>
        (
          await tx<Record<string, string>[]>`
            select current_user as role, current_setting('search_path') as path,
                   current_setting('app.current_tenant_id') as tenant, current_setting('statement_timeout') as statement,
                   current_setting('lock_timeout') as lock, current_setting('transaction_read_only') as read_only`
        )[0]!,
      { readOnly: true },
    );
    expect(inside).toEqual({
      role: a.role,
      path: `${a.schema}, extensions`,
      tenant: a.id,
      statement: `${a.context.statementTimeoutMs}ms`.replace(/^(\d+)000ms$/, '$1s'),
      lock: expect.stringMatching(/^\d+m?s$/),
      read_only: 'on',
    });
    const writable = await withTenant(
      t.app,
      a.context,
      (tx) => tx`select current_setting('transaction_read_only') as ro`,
    );
    expect(writable[0]!.ro).toBe('off');
  });

  it('applies extra planner settings with the context, and refuses any other setting or a value that is not plain', async () => {
    const [row] = await withTenant(
      t.app,
      a.context,
      (tx) => tx`select current_setting('hnsw.ef_search') as ef, current_user as role`,
      { readOnly: true, settings: { 'hnsw.ef_search': 321 } },
    );
    expect(row).toEqual({ ef: '321', role: a.role });
    const hostile: Record<string, string>[] = [
      { role: 'postgres' },
      { row_security: 'off' },
      { 'app.current_tenant_id': b.id },
      { 'hnsw.ef_search': "1'; reset role; --" },
      { 'work_mem; reset role': '1' },
      { work_mem: '1 GB' },
    ];
    for (const settings of hostile) {
      await expect(withTenant(t.app, a.context, (tx) => tx`select 1`, { settings })).rejects.toThrow(
        /refusing setting/,
      );
    }
  });

  it('refuses a context whose values are not what they claim, before any statement runs', async () => {
    for (const context of [
      { ...a.context, id: `${a.id}'; drop table orders; --` },
      { ...a.context, schema: 'public' },
      { ...a.context, role: 'postgres' },
      { ...a.context, statementTimeoutMs: 1.5 },
    ]) {
      await expect(withTenant(t.app, context, (tx) => tx`select 1`)).rejects.toThrow(/refusing/);
    }
  });

  it('nor after a tenant transaction that failed half-way', async () => {
    const served = new Set<number>();
    await expect(
      withTenant(t.app, a.context, async (tx) => {
        served.add((await tx<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid);
        await tx`select 1/0`;
      }),
    ).rejects.toMatchObject({ code: '22012' });
    expect(await reusedConnectionState(served)).toMatchObject({
      role: runtimeRoleOf(a.role),
      tenant: '',
      visibleAfterSetRole: 0,
    });
  });
});

describe('a tenant switching its own protections off', () => {
  it.each([
    ['disable RLS', (x: TestTenant) => `alter table ${q(x, 'portfolios')} disable row level security`],
    ['stop forcing RLS', (x: TestTenant) => `alter table ${q(x, 'portfolios')} no force row level security`],
    ['drop the policy', (x: TestTenant) => `drop policy tenant_isolation on ${q(x, 'portfolios')}`],
    ['add an always-true policy', (x: TestTenant) => `create policy mine on ${q(x, 'portfolios')} using (true)`],
    ['rewrite the policy', (x: TestTenant) => `alter policy tenant_isolation on ${q(x, 'portfolios')} using (true)`],
    ['take ownership of a table', (x: TestTenant) => `alter table ${q(x, 'portfolios')} owner to "${x.role}"`],
    ['take ownership of its schema', (x: TestTenant) => `alter schema "${x.schema}" owner to "${x.role}"`],
    ['take ownership of a hypertable', (x: TestTenant) => `alter table ${q(x, 'trades')} owner to "${x.role}"`],
    ['drop a table', (x: TestTenant) => `drop table ${q(x, 'orders')}`],
    ['create a table in its schema', (x: TestTenant) => `create table "${x.schema}".mine (id int)`],
    [
      'switch row security off for its session',
      (x: TestTenant) => `set row_security = off; select * from ${q(x, 'portfolios')}`,
    ],
    ['become the owner role', () => 'set role tf_owner'],
    ['become another tenant by session authorization', () => `set session authorization "${b.role}"`],
    ['create an extension', () => 'create extension if not exists citext'],
    ['read a server file', () => "select pg_read_file('/etc/passwd')"],
    ['run a program through COPY', () => "copy (select 1) to program 'true'"],
  ])('%s: denied', async (_, attack) => {
    await expect(tryAs(asA, a.id, ...attack(a).split('; '))).rejects.toMatchObject({ code: '42501' });
  });

  it('grant its rows to another tenant: nothing is granted', async () => {
    await asA.sql.unsafe(`grant select on ${q(a, 'portfolios')} to "${b.role}"`);
    const [granted] = await t.su`select has_table_privilege(${b.role}, ${q(a, 'portfolios')}, 'select') as yes`;
    expect(granted!.yes).toBe(false);
    expect((await validate(t.control)).violations).toEqual([]);
  });

  it('change default privileges in its schema: only its own future objects (it cannot create any), and the validator flags it', async () => {
    await t.su
      .begin(async (tx) => {
        await tx.unsafe(`set local role "${a.role}"`);
        await tx.unsafe(`alter default privileges in schema "${a.schema}" grant select on tables to public`);
        await tx.unsafe('reset role');
        const { violations } = await inspect(tx as Tx, a.id);
        expect(violations.map((v) => [v.check, v.object])).toEqual([['default_privileges', a.schema]]);
        throw ROLLBACK;
      })
      .catch((err) => {
        if (err !== ROLLBACK) throw err;
      });
  });
});

describe("another tenant's chunks, by name", () => {
  it.each(['trades', 'market_data'])(
    "%s: B cannot read, write or list A's chunk, by its login or through the service",
    async (hypertable) => {
      const chunk = (await chunkOf(t, a, hypertable)).qualified;
      for (const sql of [
        `select * from ${chunk}`,
        `delete from ${chunk}`,
        `copy ${chunk} to stdout`,
        `select * from extensions.show_chunks('${q(a, hypertable)}')`,
      ]) {
        await expect(tryAs(asB, b.id, sql), sql).rejects.toMatchObject({ code: '42501' });
      }
      await expect(withTenant(t.app, b.context, (tx) => tx.unsafe(`select * from ${chunk}`))).rejects.toMatchObject({
        code: '42501',
      });
    },
  );

  it("A reads its own chunk directly, skipping RLS: accepted, as only A's rows are there", async () => {
    const chunk = (await chunkOf(t, a)).qualified;
    const rows = await tryAs(asA, b.id, `select tenant_id from ${chunk}`);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.tenant_id === a.id)).toBe(true);
  });
});

describe('vector search', () => {
  // B's embedding is the query itself (dimension 0); A's point elsewhere. A row of B's
  // (B's tenant id, B's exact vector) is also planted in A's own table: the schema keeps
  // B's table out of A's reach by construction, so only this row tests what RLS does
  // inside one table, through the HNSW index.
  const query = vector(0);
  let planted: string;

  async function nearest(tenant: TestTenant, where = '') {
    return withTenant(t.app, tenant.context, async (tx) => {
      await tx.unsafe('set local enable_seqscan = off');
      await tx.unsafe("set local hnsw.iterative_scan = 'relaxed_order'");
      const plan = await tx.unsafe(`explain select id from embeddings ${where} order by embedding <=> $1 limit 5`, [
        query,
      ]);
      const rows = await tx.unsafe(
        `select content, tenant_id from embeddings ${where} order by embedding <=> $1 limit 5`,
        [query],
      );
      return { plan: plan.map((line) => String(Object.values(line)[0])).join('\n'), rows };
    });
  }

  afterAll(async () => {
    await t.su.unsafe(`delete from ${q(a, 'embeddings')} where id = $1`, [planted]);
  });

  beforeAll(async () => {
    const [row] = await t.su.unsafe(
      `insert into ${q(a, 'embeddings')} (tenant_id, content, embedding) values ($1, 'planted attack-b', $2) returning id`,
      [b.id, query],
    );
    planted = row!.id;
    await withTenant(t.app, a.context, (tx) =>
      tx.unsafe(
        `insert into embeddings (content, embedding) select 'more of A ' || i, ('[' || array_to_string(array_fill(0.001, array[383]) || (i * 0.01)::numeric, ',') || ']')::vector from generate_series(1, 20) i`,
      ),
    );
  });

  it("A's nearest neighbours of B's exact vector are A's own rows, through the HNSW index, though B's row is the nearest in A's table", async () => {
    // Positive control: without RLS (the owner), the planted row of B's is the very nearest.
    const [first] = await t.su.unsafe(
      `select id, tenant_id from ${q(a, 'embeddings')} order by embedding operator(extensions.<=>) $1::extensions.vector limit 1`,
      [query],
    );
    expect(first).toEqual({ id: planted, tenant_id: b.id });
    const { plan, rows } = await nearest(a);
    expect(plan).toMatch(/Index Scan using \w+ on embeddings[\s\S]*Order By: \(embedding <=>/);
    expect(rows.length).toBe(5);
    expect(rows.map((r) => r.tenant_id)).toEqual(Array(5).fill(a.id));
    expect(rows.some((r) => String(r.content).includes('attack-b'))).toBe(false);
  });

  it("asking for B's tenant id finds nothing; B's table is out of reach", async () => {
    expect((await nearest(a, `where tenant_id = '${b.id}'`)).rows).toEqual([]);
    const knn = (tenant: TestTenant) =>
      `select content from ${q(tenant, 'embeddings')} order by embedding operator(extensions.<=>) '${query}' limit 5`;
    await expect(tryAs(asA, a.id, knn(b))).rejects.toMatchObject({ code: '42501' });
    expect(await tryAs(asA, a.id, knn(a))).not.toEqual([]);
    // A direct login can claim B's id, but that only selects rows carrying B's id in A's
    // own table (here, the planted one); B's real rows are behind B's schema.
    expect(await tryAs(asA, a.id, `set app.current_tenant_id = '${b.id}'`, knn(a))).toEqual([
      { content: 'planted attack-b' },
    ]);
  });
});

describe('what is knowingly not isolated', () => {
  it("catalog names: B sees the names of A's tables, not their rows or statistics (pg_stats hides RLS tables' from RLS-bound roles)", async () => {
    await t.su.unsafe(`analyze ${q(a, 'portfolios')}`);
    const names = await tryAs(
      asB,
      b.id,
      `select relname from pg_class where relnamespace = '${a.schema}'::regnamespace and relname = 'portfolios'`,
    );
    expect(names).toEqual([{ relname: 'portfolios' }]);
    expect(await tryAs(asB, b.id, `select * from pg_stats where schemaname = '${a.schema}'`)).toEqual([]);
    expect(await tryAs(asA, a.id, `select * from pg_stats where schemaname = '${a.schema}'`)).toEqual([]);
    expect((await t.su`select count(*)::int as n from pg_stats where schemaname = ${a.schema}`)[0]!.n).toBeGreaterThan(
      0,
    );
    await expect(tryAs(asB, b.id, `explain select * from ${q(a, 'portfolios')}`)).rejects.toMatchObject({
      code: '42501',
    });
  });

  it("catalog metadata: B sees A's activity counters and chunk time ranges, never a row", async () => {
    const counters = await tryAs(
      asB,
      b.id,
      `select relname from pg_stat_user_tables where schemaname = '${a.schema}' and relname = 'portfolios'`,
    );
    expect(counters).toEqual([{ relname: 'portfolios' }]);
    // TimescaleDB's catalog tables stay readable (its planner reads them as the caller)...
    const ranges = await tryAs(
      asB,
      b.id,
      `
      select s.range_start from _timescaledb_catalog.hypertable h
      join _timescaledb_catalog.dimension d on d.hypertable_id = h.id
      join _timescaledb_catalog.dimension_slice s on s.dimension_id = d.id
      where h.schema_name = '${a.schema}' and h.table_name = 'trades'`,
    );
    expect(ranges).toHaveLength(1);
    // ...its information views call internal functions no tenant may execute any more.
    await expect(
      tryAs(
        asB,
        b.id,
        `select range_start from timescaledb_information.chunks where hypertable_schema = '${a.schema}'`,
      ),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(tryAs(asB, b.id, `select * from ${(await chunkOf(t, a)).qualified}`)).rejects.toMatchObject({
      code: '42501',
    });
  });
});

describe('hostile names at provisioning', () => {
  const hostile = [
    'tenant_abc"; drop schema platform cascade; --',
    'tenant_abc;select',
    "tenant_abc'",
    'tenant_ABC',
    'tenant_abcé',
    'tenant_ａｂｃ',
    `tenant_${'a'.repeat(57)}`, // 64 bytes
    `tenant_${'é'.repeat(28)}`, // 63 characters, 63+ bytes
    'tenant_abc\u0000',
    'pg_catalog',
    'platform',
    '',
  ];

  it.each(hostile)('schema name %j is refused before any DDL', (name) => {
    expect(() => assertTenantSchemaName(name)).toThrow(InvalidTenantNameError);
    expect(() => assertTenantRoleName(`${name}_role`)).toThrow(InvalidTenantNameError);
  });

  it('a name of exactly 63 bytes is accepted; names come from a keyed hash of the id, whatever the id holds', () => {
    expect(assertTenantSchemaName(`tenant_${'a'.repeat(56)}`)).toHaveLength(63);
    for (const id of ['"; drop table x; --', 'ünï©ødé 🚀', 'x'.repeat(500)])
      expect(tenantSchemaName(id, 'secret-0123456789abcdef')).toMatch(/^tenant_[0-9a-f]{20}$/);
  });

  it('the clone plan refuses to render for a hostile name', async () => {
    const plan = await t.provisioner.plan();
    expect(() => renderClonePlan(plan, { schema: hostile[0]!, role: 'tenant_abc_role' })).toThrow(
      InvalidTenantNameError,
    );
    expect(() =>
      renderClonePlan(plan, { schema: 'tenant_abc', role: 'tenant_abc_role"; drop role tf_app; --' }),
    ).toThrow(InvalidTenantNameError);
  });

  const hostileSlugs = [
    'acme"',
    'acme;drop',
    "o'brien",
    'açme',
    'ａｃｍｅ',
    'acme-🚀',
    'a'.repeat(51),
    'pg-acme',
    'tf-acme',
    'platform',
    'acme capital',
    'acme--x',
    '-acme',
  ];

  it.each(hostileSlugs)('slug %j is refused (400) and nothing is created', async (bad) => {
    expect(createTenantInput.safeParse({ slug: bad, name: 'x' }).success).toBe(false);
    const before =
      await t.su`select (select count(*)::int from platform.tenants) as tenants, (select count(*)::int from pg_namespace where nspname like 'tenant\\_%') as schemas`;
    const res = await t.http('/v1/tenants', { method: 'POST', json: { slug: bad, name: 'x' } });
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe('validation_failed');
    const after =
      await t.su`select (select count(*)::int from platform.tenants) as tenants, (select count(*)::int from pg_namespace where nspname like 'tenant\\_%') as schemas`;
    expect(after).toEqual(before);
  });

  it('a display name with quotes, semicolons and Unicode is stored as given and touches no DDL', async () => {
    const name = `Ünïcødé 株式会社 🚀 "; drop schema platform cascade; -- ' ${'é'.repeat(40)}`;
    const res = await t.http('/v1/tenants', { method: 'POST', json: { slug: 'unicode-name', name } });
    expect(res.status).toBe(201);
    const body = await res.json();
    expect(body.name).toBe(name);
    expect(body.schema).toMatch(/^tenant_[0-9a-f]{20}$/);
    const [row] = await t.su`select name from platform.tenants where slug = 'unicode-name'`;
    expect(row!.name).toBe(name);
    expect((await validate(t.control)).violations).toEqual([]);
  });
});
