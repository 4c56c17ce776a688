/**
 * The validator against real tenants: a clean platform reports nothing; each scenario
 * breaks exactly one rule on fresh tenants and the validator reports that rule and
 * nothing else; where the repair is safe, `fix` repairs it and the platform is clean again.
 */
import { runtimeRoleOf } from '../../src/db/names.ts';
import { RUNTIME_ROLES, runtimeRole } from '../../src/db/roles.ts';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tx } from '../../src/db/connect.ts';
import { CHECK_NAMES, type CheckName } from '../../src/isolation/checks/catalog.ts';
import { TENANT_POLICY_EXPRESSION } from '../../src/isolation/checks/policies.ts';
import { inspect, validate } from '../../src/isolation/validator.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { chunkOf, newTenant, purge, seed, type TestTenant } from './support.ts';

let t: TestPlatform;
beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off' } });
});
afterAll(() => t?.close());

let serial = 0;
const slug = (name: string) => `${name.replaceAll('_', '-')}-${serial++}`;
const rand = () => randomBytes(5).toString('hex');

/** What a scenario needs: two fresh tenants (A seeded, so its hypertables have chunks) and a random suffix. */
type Stage = { a: TestTenant; b: TestTenant; chunk: string; chunkName: string; suffix: string };
/** A violation as the scenario expects it, with whether `fix` may repair it unattended (pinned here, not read from the report). */
type Expected = [check: CheckName, tenant: 'a' | 'b' | null, object: string, autofix: boolean];

type Scenario = {
  rule: string;
  /** SQL run as a superuser to break the rule. */
  breaks: (s: Stage) => string;
  expect: (s: Stage) => Expected[];
  /** Service calls before the break (e.g. suspending a tenant). */
  prepare?: (s: Stage) => Promise<unknown>;
  /** SQL that removes what the scenario made outside its tenants. */
  cleanup?: (s: Stage) => string;
};

const asOwner = (sql: string) => `set role tf_owner; ${sql}; reset role`;

/** A lane other than the tenant's own. */
const otherLane = (role: string) => RUNTIME_ROLES.find((lane) => lane !== runtimeRoleOf(role))!;

const scenarios: Scenario[] = [
  {
    rule: 'registry: a tenant schema is gone',
    breaks: (s) => `drop schema "${s.a.schema}" cascade`,
    expect: (s) => [['registry_schema', 'a', s.a.schema, false]],
  },
  {
    rule: 'registry: a tenant role is gone',
    breaks: (s) => `drop owned by "${s.a.role}"; drop role "${s.a.role}"`,
    expect: (s) => [['registry_role', 'a', s.a.role, false]],
  },
  {
    rule: 'orphan: a tenant-like schema no tenant has',
    breaks: (s) => `create schema tenant_${s.suffix}`,
    expect: (s) => [['orphan_schema', null, `tenant_${s.suffix}`, false]],
    cleanup: (s) => `drop schema tenant_${s.suffix}`,
  },
  {
    rule: 'orphan: a tenant-like role with privileges here that no tenant has',
    breaks: (s) => `create role tenant_${s.suffix}_role; grant usage on schema extensions to tenant_${s.suffix}_role`,
    expect: (s) => [['orphan_role', null, `tenant_${s.suffix}_role`, false]],
    cleanup: (s) => `drop owned by tenant_${s.suffix}_role; drop role tenant_${s.suffix}_role`,
  },
  {
    rule: 'a tenant role gets CREATEDB',
    breaks: (s) => `alter role "${s.a.role}" createdb`,
    expect: (s) => [['role_attributes', 'a', s.a.role, true]],
  },
  {
    rule: 'a tenant role gets BYPASSRLS',
    breaks: (s) => `alter role "${s.a.role}" bypassrls`,
    expect: (s) => [['role_attributes', 'a', s.a.role, true]],
  },
  {
    rule: 'a tenant role gets SUPERUSER',
    breaks: (s) => `alter role "${s.a.role}" superuser`,
    expect: (s) => [['role_attributes', 'a', s.a.role, true]],
  },
  {
    rule: 'a tenant role gets CREATEROLE',
    breaks: (s) => `alter role "${s.a.role}" createrole`,
    expect: (s) => [['role_attributes', 'a', s.a.role, true]],
  },
  {
    rule: 'a tenant role gets REPLICATION',
    breaks: (s) => `alter role "${s.a.role}" replication`,
    expect: (s) => [['role_attributes', 'a', s.a.role, true]],
  },
  {
    rule: "a tenant role is granted another tenant's role",
    breaks: (s) => `grant "${s.b.role}" to "${s.a.role}"`,
    expect: (s) => [['role_membership', 'a', s.a.role, true]],
  },
  {
    rule: 'a tenant role is granted pg_read_all_data',
    breaks: (s) => `grant pg_read_all_data to "${s.a.role}"`,
    expect: (s) => [['role_membership', 'a', s.a.role, true]],
  },
  {
    rule: "a tenant role reaches another tenant's role through a group",
    breaks: (s) =>
      `create role tf_test_group_${s.suffix}; grant "${s.b.role}" to tf_test_group_${s.suffix}; grant tf_test_group_${s.suffix} to "${s.a.role}"`,
    expect: (s) => [['role_membership', 'a', s.a.role, true]],
    cleanup: (s) => `drop role tf_test_group_${s.suffix}`,
  },
  {
    rule: "a login holds two tenants' roles",
    breaks: (s) =>
      `create role tf_test_bridge_${s.suffix} login; grant "${s.a.role}", "${s.b.role}" to tf_test_bridge_${s.suffix}`,
    expect: (s) => [
      ['role_membership', 'a', `tf_test_bridge_${s.suffix}`, false],
      ['role_membership', 'b', `tf_test_bridge_${s.suffix}`, false],
    ],
    cleanup: (s) => `drop role tf_test_bridge_${s.suffix}`,
  },
  {
    rule: "the runtime role is given back a suspended tenant's role",
    prepare: (s) => t.tenants.update(s.a.id, { status: 'suspended' }, { actor: 'test' }),
    breaks: (s) => `grant "${s.a.role}" to ${runtimeRoleOf(s.a.role)}`,
    expect: (s) => [['role_membership', 'a', s.a.role, true]],
  },
  {
    rule: 'a runtime lane is given a tenant role of another lane',
    breaks: (s) => `grant "${s.a.role}" to ${otherLane(s.a.role)}`,
    expect: (s) => [['role_membership', 'a', s.a.role, true]],
  },
  {
    rule: 'a tenant table is owned by the tenant role',
    breaks: (s) => `alter table "${s.a.schema}".orders owner to "${s.a.role}"`,
    expect: (s) => [['ownership', 'a', `${s.a.schema}.orders`, true]],
  },
  {
    rule: 'a tenant schema is owned by the tenant role',
    breaks: (s) => `alter schema "${s.a.schema}" owner to "${s.a.role}"`,
    expect: (s) => [['ownership', 'a', s.a.schema, true]],
  },
  {
    rule: 'RLS disabled on a table',
    breaks: (s) => `alter table "${s.a.schema}".orders disable row level security`,
    expect: (s) => [['rls_enabled', 'a', `${s.a.schema}.orders`, true]],
  },
  {
    rule: 'RLS not forced on a hypertable',
    breaks: (s) => `alter table "${s.a.schema}".trades no force row level security`,
    expect: (s) => [['rls_forced', 'a', `${s.a.schema}.trades`, true]],
  },
  {
    rule: 'a table without its policy',
    breaks: (s) => `drop policy tenant_isolation on "${s.a.schema}".orders`,
    expect: (s) => [['policy_missing', 'a', `${s.a.schema}.orders`, true]],
  },
  {
    rule: 'a policy for PUBLIC',
    breaks: (s) => `alter policy tenant_isolation on "${s.a.schema}".orders to public`,
    expect: (s) => [['policy_roles', 'a', `${s.a.schema}.orders policy tenant_isolation`, true]],
  },
  {
    rule: 'an always-true policy added',
    breaks: (s) => `create policy leak on "${s.a.schema}".orders for select to "${s.a.role}" using (true)`,
    expect: (s) => [['policy_always_true', 'a', `${s.a.schema}.orders policy leak`, true]],
  },
  {
    rule: 'a policy without WITH CHECK',
    breaks: (s) =>
      `drop policy tenant_isolation on "${s.a.schema}".orders; ` +
      `create policy tenant_isolation on "${s.a.schema}".orders for all to "${s.a.role}" using (${TENANT_POLICY_EXPRESSION})`,
    expect: (s) => [['policy_with_check', 'a', `${s.a.schema}.orders policy tenant_isolation`, true]],
  },
  {
    rule: 'a policy not in the canonical form (no nullif, no init-plan)',
    breaks: (s) =>
      `alter policy tenant_isolation on "${s.a.schema}".orders using (tenant_id = current_setting('app.current_tenant_id')::uuid)`,
    expect: (s) => [['policy_canonical', 'a', `${s.a.schema}.orders policy tenant_isolation`, true]],
  },
  {
    // The same expression tree as every other tenant's policy, but its column 2 is no longer tenant_id.
    rule: 'a policy keyed on another column at the position tenant_id has elsewhere',
    breaks: (s) =>
      `alter table "${s.a.schema}".portfolios rename column tenant_id to owner_id; alter table "${s.a.schema}".portfolios add column tenant_id uuid`,
    // The columns changed by hand are drift too (repaired by a person: which column is right is a decision).
    expect: (s) => [
      ['policy_canonical', 'a', `${s.a.schema}.portfolios policy tenant_isolation`, true],
      ['schema_drift', 'a', `${s.a.schema}.portfolios.owner_id`, false],
      ['schema_drift', 'a', `${s.a.schema}.portfolios.tenant_id`, false],
    ],
  },
  {
    rule: 'schema usage granted to PUBLIC',
    breaks: (s) => `grant usage on schema "${s.a.schema}" to public`,
    expect: (s) => [['schema_grants', 'a', s.a.schema, true]],
  },
  {
    rule: 'schema CREATE granted to the tenant role',
    breaks: (s) => `grant create on schema "${s.a.schema}" to "${s.a.role}"`,
    expect: (s) => [['schema_grants', 'a', s.a.schema, true]],
  },
  {
    rule: 'a table granted to PUBLIC',
    breaks: (s) => `grant select on "${s.a.schema}".portfolios to public`,
    expect: (s) => [['table_grants', 'a', `${s.a.schema}.portfolios`, true]],
  },
  {
    rule: "a table granted to another tenant's role",
    breaks: (s) => `grant select on "${s.a.schema}".portfolios to "${s.b.role}"`,
    expect: (s) => [['table_grants', 'a', `${s.a.schema}.portfolios`, true]],
  },
  {
    rule: 'TRUNCATE granted to the tenant role',
    breaks: (s) => `grant truncate on "${s.a.schema}".portfolios to "${s.a.role}"`,
    expect: (s) => [['table_grants', 'a', `${s.a.schema}.portfolios`, true]],
  },
  {
    rule: 'a column granted to PUBLIC',
    breaks: (s) => `grant select (name) on "${s.a.schema}".portfolios to public`,
    expect: (s) => [['table_grants', 'a', `${s.a.schema}.portfolios.name`, true]],
  },
  {
    rule: 'a function PUBLIC may execute (the default)',
    breaks: (s) => asOwner(`create function "${s.a.schema}".answer() returns int language sql as 'select 42'`),
    expect: (s) => [['function_grants', 'a', `${s.a.schema}.answer()`, true]],
  },
  {
    rule: 'a domain PUBLIC may use (the default)',
    breaks: (s) => asOwner(`create domain "${s.a.schema}".price as numeric`),
    expect: (s) => [['type_grants', 'a', `${s.a.schema}.price`, true]],
  },
  {
    rule: 'a tenant role granted the control-plane registry',
    breaks: (s) => `grant usage on schema platform to "${s.a.role}"; grant select on platform.tenants to "${s.a.role}"`,
    expect: () => [
      ['foreign_grants', 'a', 'schema platform', true],
      ['foreign_grants', 'a', 'table platform.tenants', true],
    ],
  },
  {
    rule: "a tenant role granted a column of another tenant's table",
    breaks: (s) => `grant select (name) on "${s.b.schema}".portfolios to "${s.a.role}"`,
    expect: (s) => [['table_grants', 'b', `${s.b.schema}.portfolios.name`, true]],
  },
  {
    rule: 'a tenant role granted CREATE on the database',
    breaks: (s) => `grant create on database ${t.db.name} to "${s.a.role}"`,
    expect: () => [['foreign_grants', 'a', `database ${t.db.name}`, true]],
  },
  {
    rule: 'default privileges granting new tables to PUBLIC',
    breaks: (s) =>
      `alter default privileges for role tf_owner in schema "${s.a.schema}" grant select on tables to public`,
    expect: (s) => [['default_privileges', 'a', s.a.schema, true]],
  },
  {
    rule: "a tenant role's database-wide default privileges name another tenant's role (which then cannot be dropped)",
    breaks: (s) => `alter default privileges for role "${s.a.role}" grant select on tables to "${s.b.role}"`,
    expect: (s) => [['tenant_default_privileges', 'a', `default privileges of ${s.a.role}`, true]],
  },
  {
    rule: "default privileges in a non-tenant schema name a tenant's role",
    breaks: (s) =>
      `alter default privileges for role tf_owner in schema platform grant select on tables to "${s.a.role}"`,
    expect: () => [['tenant_default_privileges', 'a', 'default privileges of tf_owner in schema platform', true]],
  },
  {
    rule: 'a tenant login gives itself a setting (ALTER ROLE current_user SET work_mem)',
    prepare: (s) => t.credentials.rotate(s.a.id, { actor: 'test' }),
    breaks: (s) => `alter role "${s.a.schema}_login" set work_mem = '1GB'`,
    expect: (s) => [['role_settings', 'a', `${s.a.schema}_login`, true]],
  },
  {
    rule: 'a tenant login lifts its statement timeout in this database only',
    prepare: (s) => t.credentials.rotate(s.a.id, { actor: 'test' }),
    breaks: (s) => `alter role "${s.a.schema}_login" in database ${t.db.name} set statement_timeout = 0`,
    expect: (s) => [['role_settings', 'a', `${s.a.schema}_login in database "${t.db.name}"`, true]],
  },
  {
    rule: 'a tenant role gets a setting',
    breaks: (s) => `alter role "${s.a.role}" set statement_timeout = 0`,
    expect: (s) => [['role_settings', 'a', s.a.role, true]],
  },
  {
    rule: "TimescaleDB's drop_chunk, which checks no ownership, executable by PUBLIC again",
    breaks: () => 'grant execute on function _timescaledb_functions.drop_chunk(regclass) to public',
    expect: () => [['routine_privileges', null, '_timescaledb_functions.drop_chunk(regclass)', true]],
  },
  {
    rule: 'advisory locks executable by PUBLIC again',
    breaks: () => 'grant execute on function pg_advisory_lock(bigint) to public',
    expect: () => [['routine_privileges', null, 'pg_advisory_lock(bigint)', true]],
  },
  {
    rule: 'a SECURITY DEFINER function without search_path',
    breaks: (s) =>
      asOwner(
        `create function "${s.a.schema}".elevated() returns int language sql security definer as 'select 1'; ` +
          `revoke execute on function "${s.a.schema}".elevated() from public`,
      ),
    expect: (s) => [['security_definer', 'a', `${s.a.schema}.elevated()`, false]],
  },
  {
    rule: 'a view without security_invoker',
    breaks: (s) =>
      asOwner(`create view "${s.a.schema}".portfolio_names as select id, name from "${s.a.schema}".portfolios`),
    expect: (s) => [['view_security_invoker', 'a', `${s.a.schema}.portfolio_names`, true]],
  },
  {
    // A stored copy of the rows, filtered by nothing: never repaired unattended (dropping it loses what uses it).
    rule: 'a materialized view in a tenant schema',
    breaks: (s) =>
      asOwner(
        `create materialized view "${s.a.schema}".portfolio_copy as select id, name from "${s.a.schema}".portfolios`,
      ),
    expect: (s) => [['view_security_invoker', 'a', `${s.a.schema}.portfolio_copy`, false]],
  },
  {
    rule: "a chunk readable by another tenant's role",
    breaks: (s) => `grant select on ${s.chunk} to "${s.b.role}"`,
    expect: (s) => [['chunk_grants', 'a', `${s.a.schema}.${s.chunkName}`, true]],
  },
  {
    rule: 'a chunk moved to _timescaledb_internal',
    breaks: (s) => `alter table ${s.chunk} set schema _timescaledb_internal`,
    // Not unattended: moving a chunk behind TimescaleDB's back is left to an operator.
    expect: (s) => [['chunk_schema', 'a', `_timescaledb_internal.${s.chunkName}`, false]],
  },
  {
    rule: "a hypertable granted to another tenant's role (its chunks skip RLS)",
    breaks: (s) => `grant select on "${s.a.schema}".market_data to "${s.b.role}"`,
    expect: (s) => [['chunk_rls_bypass', 'a', `${s.a.schema}.market_data`, true]],
  },
  {
    rule: 'an extension installed in public',
    breaks: () => 'create extension citext schema public',
    expect: () => [['extension_schema', null, 'citext', false]],
    cleanup: () => 'drop extension citext',
  },
  {
    rule: 'the runtime role owns a table',
    breaks: (s) =>
      `create table platform.owned_${s.suffix} (x int); alter table platform.owned_${s.suffix} owner to ${runtimeRole(3)}`,
    expect: () => [['runtime_role', null, runtimeRole(3), true]],
    cleanup: (s) => `drop table platform.owned_${s.suffix}`,
  },
];

async function stage(): Promise<Stage> {
  const a = await newTenant(t, slug('a'));
  const b = await newTenant(t, slug('b'));
  await seed(t, a);
  const chunk = await chunkOf(t, a);
  return { a, b, chunk: chunk.qualified, chunkName: chunk.name, suffix: rand() };
}

type Reported = {
  check: CheckName;
  tenantId: string | null;
  object: string;
  autofix: boolean;
  rule: string;
  fix: string;
};
const found = (report: { violations: Reported[] }, s: Stage) =>
  report.violations.map((v) => [
    v.check,
    v.tenantId === s.a.id ? 'a' : v.tenantId === s.b.id ? 'b' : v.tenantId,
    v.object,
    v.autofix,
  ]);

/** The last identifier of an object ("tenant_x.orders policy leak" -> "leak"; "x.answer()" -> "answer"). */
const lastName = (object: string) =>
  object
    .replace(/\(.*\)$/, '')
    .split(/[ .]/)
    .filter(Boolean)
    .at(-1)!
    .replaceAll('"', '');

/**
 * Rule and fix say something about this violation: the rule names the object, the fix
 * is a statement (or a comment on what to do) that names it too.
 */
function expectExplained(v: Reported): void {
  const name = lastName(v.object);
  expect(v.rule, v.check).toContain(name);
  expect(v.fix, v.check).toMatch(
    /^((alter|revoke|drop|reassign|grant|create|select|delete|update|insert|comment)\b|-- \w)/i,
  );
  if (v.check !== 'registry_schema' && v.check !== 'registry_role') expect(v.fix, v.check).toContain(name);
}
const sorted = <T>(list: T[]) => [...list].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));

describe('a clean platform', () => {
  it('of many tenants, active, suspended and deleted, with data in every hypertable, reports nothing', async () => {
    const tenants = await Promise.all(Array.from({ length: 24 }, () => newTenant(t, slug('clean'))));
    for (const [i, tenant] of tenants.entries()) if (i % 2 === 0) await seed(t, tenant, i);
    await t.tenants.update(tenants[1]!.id, { status: 'suspended' }, { actor: 'test' });
    await t.tenants.delete(tenants[3]!.id, { purge: false }, { actor: 'test' });
    await t.tenants.delete(tenants[5]!.id, { purge: true }, { actor: 'test' });

    const report = await validate(t.control);
    expect(report.violations).toEqual([]);
    expect(report.outcome).toBe('clean');
    expect(report.tenantsChecked).toBe(23); // the purged one is gone from the scope
    expect(Object.keys(report.counts)).toEqual(CHECK_NAMES);
    expect(Object.values(report.counts).every((n) => n === 0)).toBe(true);
  });

  it('is checked as tf_validator, which holds no privilege on any tenant table', async () => {
    const [tenant] = (await t.tenants.list({ limit: 1 })).items;
    await t.su.begin(async (tx) => {
      await inspect(tx as Tx);
      const [who] =
        await tx`select current_user as role, current_setting('search_path') as path, current_setting('transaction_read_only') as ro`;
      expect(who).toMatchObject({ role: 'tf_validator', path: 'pg_catalog, pg_temp' });
    });
    const [privileges] = await t.su`
      select has_schema_privilege('tf_validator', ${tenant!.schema}, 'usage') as usage,
             has_table_privilege('tf_validator', ${`"${tenant!.schema}".portfolios`}, 'select') as "select",
             has_schema_privilege('tf_validator', 'platform', 'usage') as platform`;
    expect(privileges).toEqual({ usage: false, select: false, platform: false });
  });

  it('reads in a read-only transaction: the server says so inside the transaction validate opens', async () => {
    const seen: string[] = [];
    // The same pool, with begin() observed: what the server reports once validate's transaction is open.
    const observed = new Proxy(t.control, {
      get(target, key, receiver) {
        if (key !== 'begin') return Reflect.get(target, key, receiver);
        return (mode: string, work: (tx: Tx) => Promise<unknown>) =>
          target.begin(mode, async (tx) => {
            const [row] =
              await tx`select current_setting('transaction_read_only') as ro, current_setting('transaction_isolation') as iso`;
            seen.push(`${row!.ro}/${row!.iso}`);
            return work(tx as Tx);
          });
      },
    });
    const report = await validate(observed);
    expect(report.outcome).toBe('clean');
    expect(seen).toEqual(['on/repeatable read']);
  });

  it('runs from the migrator role too (a non-superuser DATABASE_URL)', async () => {
    await t.su.begin(async (tx) => {
      await tx`set local session authorization tf_migrator`;
      const result = await inspect(tx as Tx);
      expect(result.violations).toEqual([]);
    });
  });
});

/**
 * A transaction that alters a runtime lane role, retried when another test file's start-up updates
 * the same cluster-wide role row at the same moment ("tuple concurrently updated").
 */
async function onRuntimeRole(work: (tx: Tx) => Promise<unknown>): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await t.su.begin((tx) => work(tx as Tx));
    } catch (err) {
      if (attempt < 5 && (err as { message?: string }).message === 'tuple concurrently updated') continue;
      throw err;
    }
  }
}

describe('each rule, broken on its own, is reported alone', () => {
  it.each(scenarios.map((s) => [s.rule, s] as const))('%s', async (_, scenario) => {
    const s = await stage();
    try {
      await scenario.prepare?.(s);
      await t.su.unsafe(scenario.breaks(s));
      const report = await validate(t.control);
      expect(sorted(found(report, s))).toEqual(sorted(scenario.expect(s)));
      for (const v of report.violations) expectExplained(v);

      const fixed = await validate(t.control, { fix: true });
      if (scenario.expect(s).every(([, , , autofix]) => autofix)) {
        expect(fixed.fixes!.filter((f) => !f.applied)).toEqual([]);
        expect(fixed.violations).toEqual([]);
      } else if (report.violations.some((v) => v.autofix)) {
        // Mixed (a hand-made change that is also drift): the safe repairs apply, the rest stays for a person.
        expect(fixed.fixes!.filter((f) => !f.applied)).toEqual([]);
        expect(sorted(found(fixed, s))).toEqual(
          sorted(found({ ...report, violations: report.violations.filter((v) => !v.autofix) }, s)),
        );
      } else {
        expect(fixed.fixes).toEqual([]);
        expect(sorted(found(fixed, s))).toEqual(sorted(scenario.expect(s)));
      }
    } finally {
      if (scenario.cleanup) await t.su.unsafe(scenario.cleanup(s));
      await purge(t, s.a, s.b);
    }
  });

  it('the runtime role with BYPASSRLS (cluster-wide, so checked inside a transaction that is rolled back)', async () => {
    const rollback = new Error('rollback');
    await expect(
      onRuntimeRole(async (tx) => {
        await tx`alter role tf_app_5 bypassrls`;
        const { violations } = await inspect(tx as Tx);
        expect(violations.map((v) => [v.check, v.object, v.autofix])).toEqual([['runtime_role', 'tf_app_5', true]]);
        expect(violations[0]!.rule).toBe('the runtime role tf_app_5 has BYPASSRLS');
        expect(violations[0]!.fix).toContain('nobypassrls');
        throw rollback;
      }),
    ).rejects.toBe(rollback);
  });

  it('the runtime role with INHERIT (it would hold every tenant role it is granted at once; rolled back)', async () => {
    const rollback = new Error('rollback');
    await expect(
      onRuntimeRole(async (tx) => {
        await tx`alter role tf_app_2 inherit`;
        const { violations } = await inspect(tx as Tx);
        expect(violations.map((v) => [v.check, v.object, v.autofix])).toEqual([['runtime_role', 'tf_app_2', true]]);
        expect(violations[0]!.rule).toBe('the runtime role tf_app_2 has INHERIT');
        expect(violations[0]!.fix).toContain('noinherit');
        throw rollback;
      }),
    ).rejects.toBe(rollback);
  });

  it('after every scenario the platform is clean again', async () => {
    expect((await validate(t.control)).violations).toEqual([]);
  });
});

describe('scope', () => {
  it("--tenant reports that tenant's violations only", async () => {
    const s = await stage();
    try {
      await t.su.unsafe(
        `alter table "${s.a.schema}".orders no force row level security; alter table "${s.b.schema}".orders no force row level security`,
      );
      const one = await validate(t.control, { tenant: s.a.slug });
      expect(one.tenantsChecked).toBe(1);
      expect(one.scope).toEqual({ tenant: s.a.slug });
      expect(found(one, s)).toEqual([['rls_forced', 'a', `${s.a.schema}.orders`, true]]);
      expect(found(await validate(t.control, { tenant: s.b.id }), s)).toEqual([
        ['rls_forced', 'b', `${s.b.schema}.orders`, true],
      ]);
    } finally {
      await purge(t, s.a, s.b);
    }
  });

  it('an unknown tenant is a 404, not an empty report', async () => {
    await expect(validate(t.control, { tenant: 'no-such-tenant' })).rejects.toMatchObject({
      status: 404,
      code: 'tenant_not_found',
    });
  });
});
