/**
 * Tenant migrations against real tenants: template files added to a private copy of
 * `sql/` reach every tenant (active, suspended, soft-deleted; not purged), a migrated
 * tenant is exactly a freshly provisioned one, a busy or failing tenant fails alone and
 * keeps serving, bad files are refused before any tenant is touched, and two runners
 * never overlap.
 */
import { TENANT_POLICY_EXPRESSION } from '../../src/isolation/checks/policies.ts';
import { ROLES } from '../../src/db/roles.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../src/db/with-tenant.ts';
import { MigrationError } from '../../src/migrations/control-plane.ts';
import { validate } from '../../src/isolation/validator.ts';
import { countBehind } from '../../src/migrations/behind.ts';
import { readTenantMigrations, templateVersionOf } from '../../src/migrations/files.ts';
import { migrateTenants, RunInProgressError, RUN_LOCK_KEY, type RunnerOptions } from '../../src/migrations/runner.ts';
import { currentTemplateVersion, migrateTemplate } from '../../src/migrations/template.ts';
import { TemplateError } from '../../src/provisioning/clone-plan.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { shape } from '../support/shape.ts';
import { addMigration, sqlCopy, tenantWithChunks, type SeededTenant } from './support.ts';

let t: TestPlatform;
let dir: string;
const tenants: SeededTenant[] = [];
let purged: SeededTenant;
const admin = { actor: 'test:migrations' };
const options: RunnerOptions = { concurrency: 3, lockTimeoutMs: 150, retries: 2, backoffMs: 20, actor: 'test' };

beforeAll(async () => {
  dir = sqlCopy();
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off', TENANTFORGE_SQL_DIR: dir } });
  // Tenant 0 has 30 weekly chunks in trades; the others a few.
  for (let i = 0; i < 6; i++) tenants.push(await tenantWithChunks(t, `mig-${i}`, i === 0 ? 30 : 2));
  await t.tenants.update(tenants[1]!.id, { status: 'suspended' }, admin);
  await t.tenants.delete(tenants[2]!.id, { purge: false }, admin);
  purged = await tenantWithChunks(t, 'mig-purged', 0);
  await t.tenants.delete(purged.id, { purge: true }, admin);
}, 120_000);
afterAll(() => t?.close());

/** Applies the folder to the template (as start-up does), then runs the fan-out. */
async function migrate(extra: Partial<RunnerOptions> = {}) {
  await migrateTemplate(t.control, readTenantMigrations(dir));
  return migrateTenants(t.control, { ...options, ...extra });
}

const target = () => templateVersionOf(readTenantMigrations(dir));

async function versionOf(id: string): Promise<{ version: string; ledger: string[] }> {
  const [row] = await t.su`select template_version as version from platform.tenants where id = ${id}`;
  const ledger = await t.su`select name from platform.tenant_migrations where tenant_id = ${id} order by name`;
  return { version: row!.version, ledger: ledger.map((l) => l.name) };
}

async function hasColumn(schema: string, table: string, column: string): Promise<boolean> {
  const [row] = await t.su`
    select exists (select 1 from pg_attribute where attrelid = to_regclass(${`"${schema}".${table}`}) and attname = ${column} and not attisdropped) as ok`;
  return row!.ok;
}

/** Table grants with the tenant's role written as R: a migrated table must be granted as a cloned one. */
async function grants(schema: string) {
  return t.su`
    select c.relname, replace(coalesce(g.rolname, 'PUBLIC'), ${`${schema}_role`}, 'R') as grantee,
           string_agg(a.privilege_type, ',' order by a.privilege_type) as privileges
    from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a left join pg_roles g on g.oid = a.grantee
    where n.nspname = ${schema} and c.relkind in ('r', 'p') and c.relname not like '\\_hyper%' and a.grantee <> c.relowner
    group by 1, 2 order by 1, 2`;
}

const live = () => tenants.map((x) => x.id);

describe('a migration reaches every tenant', () => {
  it('adds a column to a hypertable with chunks, an index, and a new table with RLS, hypertable and grants', async () => {
    addMigration(
      dir,
      '0002_notes_and_watchlists',
      `
      alter table trades add column note text;
      create index orders_symbol_created_idx on orders (symbol, created_at);
      create table watchlists (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
        portfolio_id uuid not null references portfolios (id) on delete cascade,
        symbol ticker not null,
        added_at timestamptz not null default now(),
        check (added_at > '2000-01-01')
      );
      create index watchlists_symbol_idx on watchlists (symbol);
      create table signals (
        tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
        symbol ticker not null,
        at timestamptz not null,
        score double precision not null,
        primary key (symbol, at)
      );
      select create_hypertable('signals', 'at', chunk_time_interval => interval '1 day', create_default_indexes => false);
      do $$
      declare t text;
      begin
        foreach t in array array['watchlists', 'signals'] loop
          execute format('alter table %I enable row level security', t);
          execute format('alter table %I force row level security', t);
          execute format($p$create policy tenant_isolation on %I as permissive for all
            using (tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid))
            with check (tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid))$p$, t);
        end loop;
      end $$;
    `,
    );
    // A tenant provisioned while the run goes on is created at the new version.
    const [summary, late] = await Promise.all([migrate({ concurrency: 1 }), tenantWithChunks(t, 'mig-late', 0)]);
    tenants.push(late);
    expect(summary).toMatchObject({ status: 'succeeded', failed: 0, targetVersion: target() });
    expect(summary.migrated).toBeGreaterThanOrEqual(6);

    for (const tenant of tenants) {
      expect(await versionOf(tenant.id)).toEqual({
        version: target(),
        ledger: ['0001_trading_and_vectors', '0002_notes_and_watchlists'],
      });
      expect(await hasColumn(tenant.schema, 'trades', 'note')).toBe(true);
    }
    // The chunks of tenant 0's trades (30 of them) got the column too.
    const [chunks] = await t.su`
      select count(*)::int as n, count(*) filter (where exists (
        select 1 from pg_attribute a where a.attrelid = format('%I.%I', chunk_schema, chunk_name)::regclass and a.attname = 'note'))::int as with_note
      from timescaledb_information.chunks where hypertable_schema = ${tenants[0]!.schema} and hypertable_name = 'trades'`;
    expect(chunks).toEqual({ n: 30, with_note: 30 });
    // The purged tenant is not touched (its schema is gone) and stays on its version.
    expect((await versionOf(purged.id)).ledger).toEqual(['0001_trading_and_vectors']);
  });

  it('leaves every migrated tenant exactly like a tenant provisioned at the new version', async () => {
    const fresh = await tenantWithChunks(t, 'mig-fresh', 0);
    const expected = await shape(t.su, fresh.schema);
    expect(expected.columns.some((c) => c.relname === 'watchlists')).toBe(true);
    expect(expected.dimensions.map((d) => d.hypertable_name)).toContain('signals');
    for (const tenant of tenants.slice(0, 6)) {
      expect(await shape(t.su, tenant.schema), tenant.slug).toEqual(expected);
      expect(await grants(tenant.schema), tenant.slug).toEqual(await grants(fresh.schema));
    }
    tenants.push(fresh);
  });

  it('keeps the validator clean, the new table usable and isolated, and its chunks in the tenant schema', async () => {
    const report = await validate(t.control);
    expect(report.violations).toEqual([]);
    const a = tenants[0]!;
    await withTenant(t.app, a.context, async (tx) => {
      const [p] = await tx`select id from portfolios limit 1`;
      await tx`insert into watchlists (portfolio_id, symbol) values (${p!.id}, 'AAPL')`;
      await tx`insert into signals (symbol, at, score) values ('AAPL', now(), 0.5)`;
      await tx`update trades set note = 'checked' where symbol = 'AAPL'`;
    });
    const [chunk] =
      await t.su`select chunk_schema from timescaledb_information.chunks where hypertable_schema = ${a.schema} and hypertable_name = 'signals'`;
    expect(chunk!.chunk_schema).toBe(a.schema);
    const b = tenants[3]!;
    const seen = await withTenant(t.app, b.context, (tx) => tx`select count(*)::int as n from watchlists`);
    expect(seen[0]!.n).toBe(0);
    expect((await validate(t.control)).violations).toEqual([]);
  });

  it('does nothing, fast, when every tenant is current', async () => {
    const summary = await migrate();
    expect(summary).toMatchObject({ status: 'current', total: 0, migrated: 0, runId: null });
    expect(await countBehind(t.control, target())).toBe(0);
    // With a handful of rows the planner rightly prefers a scan; what matters is that the index serves the query.
    const plan = await t.su.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      return tx`explain (format json) select id from platform.tenants where status <> 'purged' and (template_version < 'x' or template_version > 'x')`;
    });
    expect(JSON.stringify(plan)).toContain('tenants_template_version_idx');
  });
});

describe('failures stay with their tenant', () => {
  it('a tenant whose table another session holds fails alone, keeps serving, and succeeds on rerun', async () => {
    addMigration(
      dir,
      '0003_archived_portfolios',
      'alter table portfolios add column archived boolean not null default false;\n',
    );
    const busy = tenants[4]!;
    const holder = await t.su.reserve();
    try {
      await holder`begin`;
      await holder.unsafe(`lock table "${busy.schema}".portfolios in access share mode`);
      const summary = await migrate();
      expect(summary.status).toBe('failed');
      expect(summary.failed).toBe(1);
      expect(summary.failures[0]).toMatchObject({
        tenantId: busy.id,
        code: '55P03',
        attempts: options.retries + 1,
        migration: '0003_archived_portfolios',
      });
      expect(summary.failures[0]!.error).toMatch(/lock timeout/);
      expect(summary.migrated).toBe(tenants.length - 1);
      // Still on the old version, whole, and serving.
      expect((await versionOf(busy.id)).ledger).not.toContain('0003_archived_portfolios');
      expect(await hasColumn(busy.schema, 'portfolios', 'archived')).toBe(false);
      const res = await t.http('/v1/admin/migrations');
      const status = await res.json();
      expect(status).toMatchObject({
        tenantsBehind: 1,
        run: { status: 'failed', failed: 1, failures: [{ tenantId: busy.id, code: '55P03' }] },
      });
      const metrics = await (await t.http('/metrics')).text();
      expect(metrics).toContain('tenantforge_migration_tenants_behind 1');
      expect(metrics).toContain('tenantforge_migration_last_run_failed 1');
      const ready = await (await t.http('/readyz')).json();
      expect(ready.migrations.tenantsBehind).toBe(1);
    } finally {
      await holder`rollback`;
      holder.release();
    }
    const served = await withTenant(t.app, busy.context, (tx) => tx`select count(*)::int as n from portfolios`);
    expect(served[0]!.n).toBe(1);
    const rerun = await migrate();
    expect(rerun).toMatchObject({ status: 'succeeded', total: 1, migrated: 1, failed: 0 });
    expect(await hasColumn(busy.schema, 'portfolios', 'archived')).toBe(true);
    expect(await countBehind(t.control, target())).toBe(0);
  });

  it("a constraint one tenant's rows violate leaves that tenant intact and serving; the others migrate", async () => {
    const bad = tenants[3]!;
    await withTenant(t.app, bad.context, (tx) => tx`update trades set fee = 500`);
    addMigration(dir, '0004_fee_limit', 'alter table trades add constraint trades_fee_limit check (fee < 100);\n');
    const before = await shape(t.su, bad.schema);
    const summary = await migrate();
    expect(summary).toMatchObject({ status: 'failed', failed: 1, migrated: tenants.length - 1 });
    expect(summary.failures[0]).toMatchObject({ tenantId: bad.id, code: '23514', attempts: 1 });
    expect(summary.failures[0]!.error).toContain('trades_fee_limit');
    expect(await shape(t.su, bad.schema)).toEqual(before);
    expect((await versionOf(bad.id)).ledger.at(-1)).toBe('0003_archived_portfolios');
    const served = await withTenant(t.app, bad.context, (tx) => tx`select count(*)::int as n from trades`);
    expect(served[0]!.n).toBe(2);
    // The validator judges it against its own (older) version: no drift.
    expect((await validate(t.control)).violations).toEqual([]);
    // Fixed data, rerun: only that tenant is retried.
    await withTenant(t.app, bad.context, (tx) => tx`update trades set fee = 1`);
    expect(await migrate()).toMatchObject({ status: 'succeeded', total: 1, migrated: 1 });
  });

  it('runs a per-tenant data section as each tenant, with its setting', async () => {
    addMigration(
      dir,
      '0005_backfill_notes',
      `
      alter table trades add column source text;
      -- tenantforge:per-tenant
      update trades set source = 'tenant:' || current_setting('app.current_tenant_id') || ':' || current_user;
    `,
    );
    expect(await migrate()).toMatchObject({ status: 'succeeded', failed: 0 });
    const a = tenants[0]!;
    const rows = await t.su.unsafe(`select distinct source from "${a.schema}".trades`);
    expect(rows.map((r) => r.source)).toEqual([`tenant:${a.id}:${a.context.role}`]);
  });
});

describe('drift', () => {
  it('catches a column dropped by hand in one tenant, and only that', async () => {
    const victim = tenants[5]!;
    expect((await validate(t.control)).violations).toEqual([]);
    await t.su.unsafe(`alter table "${victim.schema}".trades drop column note`);
    const report = await validate(t.control);
    expect(report.violations.map((v) => [v.check, v.tenantId, v.object])).toEqual([
      ['schema_drift', victim.id, `${victim.schema}.trades.note`],
    ]);
    expect(report.violations[0]!.rule).toMatch(/is missing/);
    await t.su.unsafe(`alter table "${victim.schema}".trades add column note text`);
    await t.su.unsafe(`alter table "${victim.schema}".trades drop column source`);
    await t.su.unsafe(`alter table "${victim.schema}".trades add column source text`);
    expect((await validate(t.control)).violations).toEqual([]);
  });

  // A run skips tenants whose structure it found clean before and whose catalog rows have
  // not changed since: each kind of change must bring the tenant back under review.
  it('looks again at a tenant found clean once any part of its structure, policies, grants or code changes', async () => {
    const victim = tenants[6]!;
    const trades = `"${victim.schema}".trades`;
    const portfolios = `"${victim.schema}".portfolios`;
    const [chunk] = await t.su<{ name: string }[]>`
      select format('%I.%I', chunk_schema, chunk_name) as name
      from timescaledb_information.chunks where hypertable_schema = ${tenants[0]!.schema} and hypertable_name = 'trades' limit 1`;
    const changes: [string, string, string, string, SeededTenant?][] = [
      [
        'column type',
        `alter table ${trades} alter column note type varchar(40)`,
        `alter table ${trades} alter column note type text`,
        'schema_drift',
      ],
      [
        'not null',
        `alter table ${trades} alter column note set not null`,
        `alter table ${trades} alter column note drop not null`,
        'schema_drift',
      ],
      [
        'default',
        `alter table ${trades} alter column note set default 'x'`,
        `alter table ${trades} alter column note drop default`,
        'schema_drift',
      ],
      [
        'index',
        `create index extra_idx on ${trades} (note)`,
        `drop index "${victim.schema}".extra_idx`,
        'schema_drift',
      ],
      [
        'constraint',
        `alter table ${trades} add constraint extra_check check (note <> '')`,
        `alter table ${trades} drop constraint extra_check`,
        'schema_drift',
      ],
      [
        'trigger',
        `create trigger extra_trg before update on "${victim.schema}".portfolios for each row execute function suppress_redundant_updates_trigger()`,
        `drop trigger extra_trg on "${victim.schema}".portfolios`,
        'schema_drift',
      ],
      [
        'column name',
        `alter table ${trades} rename column note to memo`,
        `alter table ${trades} rename column memo to note`,
        'schema_drift',
      ],
      [
        'policy',
        `alter policy tenant_isolation on ${trades} using (true)`,
        `alter policy tenant_isolation on ${trades} using (${TENANT_POLICY_EXPRESSION})`,
        'policy_always_true',
      ],
      [
        'table grant',
        `grant select on ${portfolios} to public`,
        `revoke select on ${portfolios} from public`,
        'table_grants',
      ],
      [
        'column grant',
        `grant update (name) on ${portfolios} to public`,
        `revoke update (name) on ${portfolios} from public`,
        'table_grants',
      ],
      [
        'schema grant',
        `grant create on schema "${victim.schema}" to public`,
        `revoke create on schema "${victim.schema}" from public`,
        'schema_grants',
      ],
      [
        'row level security',
        `alter table ${portfolios} no force row level security`,
        `alter table ${portfolios} force row level security`,
        'rls_forced',
      ],
      [
        'owner',
        `alter table ${portfolios} owner to "${victim.schema}_role"`,
        `alter table ${portfolios} owner to ${ROLES.owner}`,
        'ownership',
      ],
      [
        'function',
        `create function "${victim.schema}".sneaky() returns int language sql security definer as 'select 1'`,
        `drop function "${victim.schema}".sneaky()`,
        'security_definer',
      ],
      [
        'chunk grant',
        `grant select on ${chunk!.name} to public`,
        `revoke select on ${chunk!.name} from public`,
        'chunk_grants',
        tenants[0]!,
      ],
    ];
    for (const [what, change, undo, check, tenant = victim] of changes) {
      expect((await validate(t.control)).violations, `before: ${what}`).toEqual([]);
      await t.su.unsafe(change);
      const found = (await validate(t.control)).violations;
      expect(
        found.map((v) => [v.check, v.tenantId]),
        `after: ${what}`,
      ).toContainEqual([check, tenant.id]);
      await t.su.unsafe(undo);
    }
    expect((await validate(t.control)).violations).toEqual([]);
  });
});

describe('bad input is refused before any tenant is touched', () => {
  const refusals: [string, string, RegExp, typeof MigrationError | typeof TemplateError][] = [
    [
      '0006_does_not_parse',
      'alter tabel trades add column x text;',
      /sql\/0006_does_not_parse\.sql failed on the template \(line 1\): syntax error/,
      MigrationError,
    ],
    [
      '0006_no_rls',
      'create table loose (tenant_id uuid not null, x text);',
      /loose must have row level security/,
      TemplateError,
    ],
    ['0006_sequence', 'create sequence counter;', /sequence counter/, TemplateError],
    ['0006_table_rename', 'alter table positions rename to holdings;', /renamed to holdings/, TemplateError],
    [
      '0006_rows_outside',
      'alter table trades add column y text;\nupdate trades set y = 1;',
      /changes rows outside its per-tenant section \(line 2\)/,
      MigrationError,
    ],
  ];
  it.each(refusals)('%s', async (name, sql, message, type) => {
    const before = {
      template: await shape(t.su, 'tf_template'),
      ledger: await t.su`select name from platform.template_migrations order by name`,
    };
    const file = addMigration(dir, name, sql);
    try {
      const error = await migrate().catch((e) => e);
      expect(error).toBeInstanceOf(type);
      expect(error.message).toMatch(message);
      expect(await shape(t.su, 'tf_template')).toEqual(before.template);
      expect(await t.su`select name from platform.template_migrations order by name`).toEqual(before.ledger);
      expect(await countBehind(t.control, await currentTemplateVersion(t.control))).toBe(0);
    } finally {
      const { rmSync } = await import('node:fs');
      rmSync(file);
    }
    const [late] =
      await t.su`select count(*)::int as n from platform.tenants where status <> 'purged' and template_version <> ${target()}`;
    expect(late!.n).toBe(0);
  });

  it('an edited applied file', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const path = `${dir}/0003_archived_portfolios.sql`;
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, original.replace('false', 'true'));
    try {
      await expect(migrate()).rejects.toThrow(/0003_archived_portfolios\.sql was edited after it was applied/);
    } finally {
      writeFileSync(path, original);
    }
  });
});

describe('one runner at a time', () => {
  it('a second runner is told another run is in progress; with wait, it waits', async () => {
    const holder = await t.su.reserve();
    try {
      await holder`select pg_advisory_lock(hashtext(${RUN_LOCK_KEY}))`;
      await expect(migrateTenants(t.control, options)).rejects.toThrow(RunInProgressError);
      const waiting = migrateTenants(t.control, { ...options, wait: true });
      await new Promise((r) => setTimeout(r, 200));
      await holder`select pg_advisory_unlock(hashtext(${RUN_LOCK_KEY}))`;
      expect((await waiting).status).toBe('current');
    } finally {
      holder.release();
    }
  });

  it('two runs started together never both migrate a tenant', async () => {
    addMigration(dir, '0006_order_tags', 'alter table orders add column tags text[];\n');
    await migrateTemplate(t.control, readTenantMigrations(dir));
    const results = await Promise.allSettled([migrateTenants(t.control, options), migrateTenants(t.control, options)]);
    const done = results.filter((r) => r.status === 'fulfilled');
    expect(done).toHaveLength(1);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(
      RunInProgressError,
    );
    expect((done[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof migrateTenants>>>).value).toMatchObject({
      status: 'succeeded',
      failed: 0,
    });
    const [ledger] =
      await t.su`select count(*)::int as n from platform.tenant_migrations where name = '0006_order_tags'`;
    expect(ledger!.n).toBe(live().length);
  });
});

describe('column renames', () => {
  it('renames a column in every tenant, keeping its values (matched by position, not name)', async () => {
    const a = tenants[0]!;
    await withTenant(t.app, a.context, (tx) => tx`update orders set tags = array['hedge']`);
    addMigration(dir, '0007_order_labels', 'alter table orders rename column tags to labels;\n');
    expect(await migrate()).toMatchObject({ status: 'succeeded', failed: 0 });
    const rows = await withTenant(t.app, a.context, (tx) => tx`select labels from orders`);
    expect(rows.map((r) => r.labels)).toEqual([['hedge']]);
    for (const tenant of tenants) expect(await hasColumn(tenant.schema, 'orders', 'tags')).toBe(false);
    expect((await validate(t.control)).violations).toEqual([]);
  });
});
