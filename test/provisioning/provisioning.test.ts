import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tenant } from '../../src/tenants/service.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { shape } from '../support/shape.ts';

let t: TestPlatform;
/** Index of the statement to replace with a failing one; undefined = no fault. */
let faultAt: number | undefined;
/** Appended to the plan (after every step): undoes the schema, so the read-back must catch it. */
let sabotageReadBack: ((statements: string[]) => string) | undefined;
/** How many statements the provisioner handed the interceptor last: the fault range comes from here. */
let intercepted = 0;

beforeAll(async () => {
  t = await testPlatform({
    provisioner: {
      interceptStatements: (statements) => {
        intercepted = statements.length;
        if (sabotageReadBack) return [...statements, sabotageReadBack(statements)];
        return faultAt === undefined
          ? statements
          : statements.map((s, i) =>
              i === faultAt ? `do $$ begin raise exception 'injected fault at statement ${i}'; end $$` : s,
            );
      },
    },
  });
  await t.su.unsafe(FAULT_TRIGGERS);
});
afterAll(() => t?.close());

const admin = { actor: 'test' };

/**
 * Faults outside the clone plan, raised by the server itself: the registry insert and
 * its update, the ledger, the idempotency key, the success audit row (BEFORE triggers)
 * and COMMIT (a deferred constraint trigger). Each fires only for a slug armed for it.
 */
const FAULT_TRIGGERS = `
  create schema tf_test_faults;
  create table tf_test_faults.armed (point text not null, slug text not null, primary key (point, slug));
  create function tf_test_faults.trip() returns trigger language plpgsql security definer set search_path = pg_catalog, platform as $fn$
  declare s text;
  begin
    if tg_table_name = 'tenants' then s := new.slug;
    elsif tg_table_name = 'audit_log' then
      if new.outcome = 'succeeded' then s := new.detail->>'slug'; end if;
    else s := (select slug from platform.tenants where id = new.tenant_id);
    end if;
    if exists (select 1 from tf_test_faults.armed a where a.point = tg_argv[0] and a.slug = s) then
      raise exception 'injected fault at %', tg_argv[0];
    end if;
    return new;
  end $fn$;
  create trigger fault_registry_insert before insert on platform.tenants for each row execute function tf_test_faults.trip('registry insert');
  create trigger fault_registry_update before update on platform.tenants for each row execute function tf_test_faults.trip('registry update');
  create trigger fault_ledger before insert on platform.tenant_migrations for each row execute function tf_test_faults.trip('ledger');
  create trigger fault_idempotency before insert on platform.idempotency_keys for each row execute function tf_test_faults.trip('idempotency key');
  create trigger fault_audit before insert on platform.audit_log for each row execute function tf_test_faults.trip('audit');
  create constraint trigger fault_commit after insert on platform.tenants deferrable initially deferred
    for each row execute function tf_test_faults.trip('commit');`;

/** Creates a tenant through the API (with an Idempotency-Key, so that write is on the path too) and expects a clean failure. */
async function expectCleanFailure(slug: string, fault: string, before: Awaited<ReturnType<typeof footprint>>) {
  const res = await t.http('/v1/tenants', {
    method: 'POST',
    json: { slug, name: slug },
    headers: { 'idempotency-key': `key-${slug}` },
  });
  expect(res.status, fault).toBe(500);
  expect((await res.json()).code, fault).toBe('internal_error');
  expect(await footprint(), fault).toEqual(before);
  const [audit] = await t.su`select outcome, detail from platform.audit_log where detail->>'slug' = ${slug}`;
  expect(audit?.outcome, fault).toBe('failed');
  expect(audit?.detail.error, fault).toContain(fault);
  const names = t.provisioner.namesFor(audit!.detail.attemptedId);
  const leftovers = await t.su`
    select 1 from pg_namespace where nspname in (${names.schema}, ${names.schema + '_moved'}) union all select 1 from pg_roles where rolname = ${names.role}`;
  expect(leftovers, fault).toHaveLength(0);
}

async function createTenant(slug: string): Promise<Tenant> {
  return (await t.tenants.create({ slug, name: slug, plan: 'free' }, admin)).tenant;
}

/**
 * Everything of tenants that lives in this database, to compare before and after. Roles
 * are cluster-wide (other test files make some at the same time), so they are checked
 * by name for each attempt instead.
 */
async function footprint() {
  const [row] = await t.su`
    select (select count(*)::int from pg_namespace where nspname like 'tenant\\_%') as schemas,
           (select count(*)::int from _timescaledb_catalog.hypertable where schema_name like 'tenant\\_%') as hypertables,
           (select count(*)::int from platform.tenants) as tenants,
           (select count(*)::int from platform.tenant_migrations) as ledger,
           (select count(*)::int from platform.idempotency_keys) as idempotency_keys,
           (select count(*)::int from platform.audit_log where outcome = 'succeeded') as audit_succeeded,
           (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname like 'tenant\\_%') as relations`;
  return row!;
}

describe('rollback: a fault at any step leaves nothing of the tenant behind', () => {
  it('fails cleanly at every statement of the plan (the range is what the provisioner handed the interceptor)', async () => {
    // A clean run first: how many statements the provisioner really sends.
    expect((await createTenant('probe')).status).toBe('active');
    const statements = intercepted;
    expect(statements).toBeGreaterThan(40);
    const before = await footprint();
    try {
      for (let k = 0; k < statements; k++) {
        faultAt = k;
        await expectCleanFailure(`fault-${k}`, `injected fault at statement ${k}`, before);
        expect(intercepted, `statement ${k}`).toBe(statements);
      }
    } finally {
      faultAt = undefined;
    }
    expect((await createTenant('after-faults')).status).toBe('active');
  });

  it('fails cleanly when the read-back finds the schema gone', async () => {
    const before = await footprint();
    sabotageReadBack = (statements) => {
      const schema = /create schema "?(tenant_[0-9a-f]+)"?/.exec(statements.join('\n'))![1]!;
      return `alter schema "${schema}" rename to "${schema}_moved"`;
    };
    try {
      await expectCleanFailure('fault-read-back', 'provisioning did not create', before);
    } finally {
      sabotageReadBack = undefined;
    }
  });

  it.each(['registry insert', 'registry update', 'ledger', 'idempotency key', 'audit', 'commit'])(
    'fails cleanly at the %s',
    async (point) => {
      const slug = `fault-${point.replace(' ', '-')}`;
      const before = await footprint();
      await t.su`insert into tf_test_faults.armed (point, slug) values (${point}, ${slug})`;
      await expectCleanFailure(slug, `injected fault at ${point}`, before);
      // Disarmed, the same request provisions: the fault, not the request, was the cause.
      await t.su`delete from tf_test_faults.armed where slug = ${slug}`;
      const res = await t.http('/v1/tenants', {
        method: 'POST',
        json: { slug, name: slug },
        headers: { 'idempotency-key': `key-${slug}-retry` },
      });
      expect(res.status).toBe(201);
    },
  );
});

describe('concurrency', () => {
  it('provisions 100 tenants at once, all succeeding', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) =>
        t.http('/v1/tenants', { method: 'POST', json: { slug: `burst-${i}`, name: `Burst ${i}` } }),
      ),
    );
    const statuses = await Promise.all(
      results.map(async (r) => (r.status === 'fulfilled' ? r.value.status : String(r.reason))),
    );
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    const [count] =
      await t.su`select count(*)::int as n from platform.tenants where slug like 'burst-%' and status = 'active'`;
    expect(count!.n).toBe(100);
    const [schemas] = await t.su`
      select count(*)::int as n from pg_namespace n join platform.tenants x on x.schema_name = n.nspname where x.slug like 'burst-%'`;
    expect(schemas!.n).toBe(100);
  });
});

describe('a tenant schema matches the template', () => {
  let tenant: Tenant;
  beforeAll(async () => {
    tenant = await createTenant('structure');
  });

  it('has the same columns, constraints, indexes, policies, triggers, hypertables and RLS', async () => {
    const template = await shape(t.su, 'tf_template');
    const clone = await shape(t.su, tenant.schema);
    expect(template.columns.length).toBeGreaterThan(40);
    expect(clone).toEqual(template);
    expect(clone.dimensions.map((d) => d.hypertable_name).sort()).toEqual(['market_data', 'market_data_1h', 'trades']);
    expect(clone.rls.every((r) => r.relrowsecurity && r.relforcerowsecurity && r.owner === 'tf_owner')).toBe(true);
  });

  it('grants the tenant role exactly select/insert/update/delete per table, and nothing to PUBLIC', async () => {
    const grants = await t.su`
      select c.relname, coalesce(g.rolname, 'PUBLIC') as grantee, string_agg(a.privilege_type, ',' order by a.privilege_type) as privileges
      from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
      left join pg_roles g on g.oid = a.grantee
      where n.nspname = ${tenant.schema} and c.relkind in ('r', 'p') and c.relname not like '\\_hyper%' and a.grantee <> c.relowner
      group by 1, 2 order by 1, 2`;
    expect(grants.map((g) => g.relname)).toEqual([
      'embeddings',
      'market_data',
      'market_data_1h',
      'orders',
      'portfolios',
      'positions',
      'trades',
    ]);
    for (const g of grants)
      expect(g).toMatchObject({ grantee: `${tenant.schema}_role`, privileges: 'DELETE,INSERT,SELECT,UPDATE' });
    const [schemaAcl] = await t.su`
      select array_agg(coalesce(g.rolname, 'PUBLIC') || ':' || a.privilege_type order by 1) as acl
      from pg_namespace n, aclexplode(n.nspacl) a left join pg_roles g on g.oid = a.grantee
      where n.nspname = ${tenant.schema} and a.grantee <> n.nspowner`;
    expect(schemaAcl!.acl).toEqual([`${tenant.schema}_role:USAGE`]);
    const [owner] =
      await t.su`select pg_get_userbyid(nspowner) as owner from pg_namespace where nspname = ${tenant.schema}`;
    expect(owner!.owner).toBe('tf_owner');
  });

  it('keeps hypertable chunks in the tenant schema, with the hypertable grants only', async () => {
    await t.app.forTenant(tenant.schema).begin(async (tx) => {
      await tx`select set_config('role', ${`${tenant.schema}_role`}, true), set_config('search_path', ${`${tenant.schema}, extensions`}, true),
                      set_config('app.current_tenant_id', ${tenant.id}, true)`;
      const [p] = await tx`insert into portfolios (name) values ('main') returning id`;
      await tx`insert into trades (portfolio_id, symbol, side, quantity, price, executed_at) values (${p!.id}, 'AAPL', 'buy', 10, 190.5, now())`;
      // The cloned trigger (a shared template function) runs for the tenant role.
      const [touched] = await tx`
        update portfolios set name = 'renamed', updated_at = '2000-01-01' where id = ${p!.id} returning updated_at > '2001-01-01' as later`;
      expect(touched!.later).toBe(true);
    });
    const chunks = await t.su`
      select chunk_schema, chunk_name from timescaledb_information.chunks where hypertable_schema = ${tenant.schema}`;
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.chunk_schema).toBe(tenant.schema);
    const [acl] = await t.su`
      select array_agg(distinct coalesce(g.rolname, 'PUBLIC')) as grantees
      from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a left join pg_roles g on g.oid = a.grantee
      where n.nspname = ${tenant.schema} and c.relname = ${chunks[0]!.chunk_name} and a.grantee <> c.relowner`;
    expect(acl!.grantees).toEqual([`${tenant.schema}_role`]);
  });

  it("keeps one tenant's role out of another tenant's tables and chunks", async () => {
    const other = await createTenant('neighbour');
    const attempt = (sql: string) =>
      t.app.forTenant(other.schema).begin(async (tx) => {
        await tx`select set_config('role', ${`${other.schema}_role`}, true), set_config('app.current_tenant_id', ${tenant.id}, true)`;
        return tx.unsafe(sql);
      });
    await expect(attempt(`select * from "${tenant.schema}".trades`)).rejects.toThrow(/permission denied for schema/);
    const [chunk] =
      await t.su`select chunk_name from timescaledb_information.chunks where hypertable_schema = ${tenant.schema}`;
    await expect(attempt(`select * from "${tenant.schema}"."${chunk!.chunk_name}"`)).rejects.toThrow(
      /permission denied for schema/,
    );
  });
});
