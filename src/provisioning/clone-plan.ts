/**
 * The clone plan: the template schema, introspected once per template version and
 * compiled into DDL statements parameterised by tenant schema and role. Running a plan
 * touches no catalog-wide scan (grants go per table by name, never ON ALL TABLES IN SCHEMA).
 *
 * `CREATE TABLE ... (LIKE ... INCLUDING ALL)` copies columns, defaults, checks, comments
 * and storage. Indexes are excluded there and created from the template's definitions
 * instead, so every tenant's index and key names match the template's (LIKE would name
 * them anew). The plan adds back what LIKE leaves out: foreign keys, triggers, RLS
 * (enabled and forced), policies, hypertables (chunks in the tenant's own schema), the
 * tenant role and its per-table grants.
 *
 * @example
 * const plan = await compileClonePlan(sql);
 * const statements = renderClonePlan(plan, { schema, role });
 */
import type { Sql, Tx } from '../db/connect.ts';
import { ROLE_DDL_LOCK } from '../db/locks.ts';
import { createTenantRole, grantTenantRoleToRuntime } from './tenant-roles.ts';
import { TEMPLATE_SCHEMA } from '../db/roles.ts';
import { assertTenantRoleName, assertTenantSchemaName, runtimeRoleOf } from '../db/names.ts';

// Placeholders: the quoted schema identifier, the bare schema name (for a text argument),
// the quoted role, the quoted runtime role of the tenant's lane.
const SCHEMA = '\u0000schema\u0000';
const SCHEMA_NAME = '\u0000schema-name\u0000';
const ROLE = '\u0000role\u0000';
const LANE = '\u0000lane\u0000';

/**
 * One statement of the plan. `table` and `key` say which template object it clones
 * (`index:orders:orders_status_idx`): tenant migrations diff plans by key to find what
 * a template file added or removed (src/migrations/tenant-plan.ts).
 */
export type PlanStep = { name: string; sql: string; table?: string; key?: string };

export type ClonePlan = {
  templateVersion: string;
  tables: string[];
  hypertables: string[];
  steps: PlanStep[];
};

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
const inTenant = (table: string) => `${SCHEMA}.${ident(table)}`;

type TableRow = { oid: number; relname: string; rls: boolean; forced: boolean; tenant_col: boolean };
type ConstraintRow = { relname: string; conname: string; def: string; target: string; target_in_template: boolean };
type KeyRow = { relname: string; conname: string; def: string };
type IndexRow = { relname: string; indexname: string; def: string };
type TriggerRow = { relname: string; tgname: string; def: string };
type PolicyRow = {
  relname: string;
  polname: string;
  cmd: string;
  permissive: boolean;
  qual: string | null;
  check: string | null;
};
type DimensionRow = { table_name: string; column_name: string; time_interval: string | null; dimension_type: string };

const COMMANDS: Record<string, string> = { '*': 'all', r: 'select', a: 'insert', w: 'update', d: 'delete' };

/** Reads the template from the catalog and compiles the plan. Throws TemplateError when the template breaks a rule. */
export async function compileClonePlan(sql: Sql, templateVersion: string): Promise<ClonePlan> {
  return sql.begin((tx) => compileClonePlanIn(tx, templateVersion));
}

/** The same, inside the caller's transaction (a template migration compiles before and after its file). */
export async function compileClonePlanIn(tx: Tx, templateVersion: string): Promise<ClonePlan> {
  {
    // An empty search_path makes every deparsed name schema-qualified, so rewriting is exact.
    await tx`select set_config('search_path', '', true)`;
    const [ns] = await tx<{ oid: number }[]>`select oid from pg_namespace where nspname = ${TEMPLATE_SCHEMA}`;
    if (!ns)
      throw new TemplateError(`template schema ${TEMPLATE_SCHEMA} does not exist; run the template migrations first`);

    const tables = await tx<TableRow[]>`
      select c.oid, c.relname, c.relrowsecurity as rls, c.relforcerowsecurity as forced,
             exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id'
                     and a.atttypid = 'uuid'::regtype and a.attnotnull and not a.attisdropped) as tenant_col
      from pg_class c where c.relnamespace = ${ns.oid} and c.relkind in ('r', 'p') order by c.oid`;
    const sequences = await tx`select relname from pg_class where relnamespace = ${ns.oid} and relkind = 'S'`;
    const views = await tx`select relname from pg_class where relnamespace = ${ns.oid} and relkind in ('v', 'm')`;
    const constraints = await tx<ConstraintRow[]>`
      select c.relname, k.conname, pg_get_constraintdef(k.oid) as def, t.relname as target,
             t.relnamespace = ${ns.oid} as target_in_template
      from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_class t on t.oid = k.confrelid
      where k.contype = 'f' and c.relnamespace = ${ns.oid} order by c.oid, k.conname`;
    const keys = await tx<KeyRow[]>`
      select c.relname, k.conname, pg_get_constraintdef(k.oid) as def
      from pg_constraint k join pg_class c on c.oid = k.conrelid
      where k.contype in ('p', 'u', 'x') and c.relnamespace = ${ns.oid} order by c.oid, k.contype, k.conname`;
    const indexes = await tx<IndexRow[]>`
      select c.relname, ic.relname as indexname, pg_get_indexdef(i.indexrelid) as def
      from pg_index i join pg_class c on c.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
      where c.relnamespace = ${ns.oid} and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)
      order by c.oid, i.indexrelid`;
    const triggers = await tx<TriggerRow[]>`
      select c.relname, g.tgname, pg_get_triggerdef(g.oid) as def
      from pg_trigger g join pg_class c on c.oid = g.tgrelid join pg_proc p on p.oid = g.tgfoid
      where c.relnamespace = ${ns.oid} and not g.tgisinternal
        and p.pronamespace::regnamespace::text not like '\\_timescaledb%'
      order by c.oid, g.tgname`;
    const policies = await tx<PolicyRow[]>`
      select c.relname, p.polname, p.polcmd as cmd, p.polpermissive as permissive,
             pg_get_expr(p.polqual, p.polrelid) as qual, pg_get_expr(p.polwithcheck, p.polrelid) as check
      from pg_policy p join pg_class c on c.oid = p.polrelid
      where c.relnamespace = ${ns.oid} order by c.oid, p.polname`;
    const dimensions = await tx<DimensionRow[]>`
      select hypertable_name as table_name, column_name, time_interval::text, dimension_type
      from timescaledb_information.dimensions where hypertable_schema = ${TEMPLATE_SCHEMA} order by hypertable_name, dimension_number`;
    const [ts] = await tx<
      { schema: string }[]
    >`select extnamespace::regnamespace::text as schema from pg_extension where extname = 'timescaledb'`;

    const problems: string[] = [];
    if (tables.length === 0) problems.push('the template has no tables');
    for (const s of sequences)
      problems.push(`sequence ${s.relname}: use uuid keys (granting sequences per tenant needs catalog scans)`);
    for (const v of views) problems.push(`view ${v.relname}: views are not cloned`);
    for (const t of tables) {
      if (!t.tenant_col) problems.push(`table ${t.relname} has no "tenant_id uuid not null" column`);
      if (!t.rls || !t.forced) problems.push(`table ${t.relname} must have row level security enabled and forced`);
      if (!policies.some((p) => p.relname === t.relname)) problems.push(`table ${t.relname} has no RLS policy`);
    }
    for (const c of constraints) {
      if (!c.target_in_template) problems.push(`foreign key ${c.conname} on ${c.relname} points outside the template`);
    }
    for (const d of dimensions) {
      if (d.dimension_type !== 'Time' || !d.time_interval)
        problems.push(`hypertable ${d.table_name}: only one time dimension is supported`);
    }
    if (dimensions.length && !ts) problems.push('the template has hypertables but timescaledb is not installed');
    if (problems.length) throw new TemplateError(`the template cannot be cloned: ${problems.join('; ')}`);

    const steps: PlanStep[] = [];
    const step = (name: string, text: string, table?: string, key?: string) =>
      steps.push({ name, sql: text, ...(table ? { table, key } : {}) });
    const qualifiedTemplate = (t: string) => `${TEMPLATE_SCHEMA}.${t}`;

    step('create schema', `create schema ${SCHEMA}`);
    step('revoke schema from public', `revoke all on schema ${SCHEMA} from public`);
    for (const t of tables) {
      step(
        `create table ${t.relname}`,
        `create table ${inTenant(t.relname)} (like ${ident(TEMPLATE_SCHEMA)}.${ident(t.relname)} including all excluding indexes)`,
        t.relname,
        `table:${t.relname}`,
      );
    }
    for (const k of keys) {
      step(
        `key ${k.relname}.${k.conname}`,
        `alter table ${inTenant(k.relname)} add constraint ${ident(k.conname)} ${k.def}`,
        k.relname,
        `key:${k.relname}:${k.conname}`,
      );
    }
    for (const i of indexes) {
      const on = ` ON ${qualifiedTemplate(i.relname)} `;
      if (i.def.split(on).length !== 2) throw new TemplateError(`cannot rewrite index: ${i.def}`);
      step(
        `index on ${i.relname}`,
        i.def.replace(on, ` ON ${inTenant(i.relname)} `),
        i.relname,
        `index:${i.relname}:${i.indexname}`,
      );
    }
    for (const c of constraints) {
      const from = `REFERENCES ${qualifiedTemplate(c.target)}(`;
      if (!c.def.includes(from)) throw new TemplateError(`cannot rewrite foreign key ${c.conname}: ${c.def}`);
      step(
        `foreign key ${c.relname}.${c.conname}`,
        `alter table ${inTenant(c.relname)} add constraint ${ident(c.conname)} ${c.def.replace(from, `REFERENCES ${inTenant(c.target)}(`)}`,
        c.relname,
        `fk:${c.relname}:${c.conname}`,
      );
    }
    for (const g of triggers) {
      const on = ` ON ${qualifiedTemplate(g.relname)} `;
      if (g.def.split(on).length !== 2) throw new TemplateError(`cannot rewrite trigger: ${g.def}`);
      step(
        `trigger on ${g.relname}`,
        g.def.replace(on, ` ON ${inTenant(g.relname)} `),
        g.relname,
        `trigger:${g.relname}:${g.tgname}`,
      );
    }
    for (const t of tables) {
      step(
        `enable rls ${t.relname}`,
        `alter table ${inTenant(t.relname)} enable row level security`,
        t.relname,
        `rls:${t.relname}`,
      );
      step(
        `force rls ${t.relname}`,
        `alter table ${inTenant(t.relname)} force row level security`,
        t.relname,
        `force-rls:${t.relname}`,
      );
    }
    for (const d of dimensions) {
      // Chunks go to the tenant's schema, which only the tenant role may use, and not to
      // _timescaledb_internal, which every role can use.
      step(
        `hypertable ${d.table_name}`,
        `select ${ident(ts!.schema)}.create_hypertable('${SCHEMA}.${ident(d.table_name)}'::regclass, ${literal(d.column_name)}, ` +
          `chunk_time_interval => interval ${literal(d.time_interval!)}, create_default_indexes => false, ` +
          `associated_schema_name => '${SCHEMA_NAME}')`,
        d.table_name,
        `hypertable:${d.table_name}`,
      );
    }
    // Role DDL and grants on shared catalog rows can fail with "tuple concurrently updated"
    // when run concurrently: serialise this last part of the transaction.
    step('lock role ddl', ROLE_DDL_LOCK);
    step('create role', createTenantRole(ROLE));
    for (const p of policies) {
      step(
        `policy ${p.relname}.${p.polname}`,
        `create policy ${ident(p.polname)} on ${inTenant(p.relname)} as ${p.permissive ? 'permissive' : 'restrictive'} ` +
          `for ${COMMANDS[p.cmd]} to ${ROLE}${p.qual ? ` using (${p.qual})` : ''}${p.check ? ` with check (${p.check})` : ''}`,
        p.relname,
        `policy:${p.relname}:${p.polname}`,
      );
    }
    step('grant schema usage', `grant usage on schema ${SCHEMA} to ${ROLE}`);
    for (const t of tables) {
      step(
        `revoke ${t.relname} from public`,
        `revoke all on table ${inTenant(t.relname)} from public`,
        t.relname,
        `revoke:${t.relname}`,
      );
      step(
        `grant ${t.relname}`,
        `grant select, insert, update, delete on table ${inTenant(t.relname)} to ${ROLE}`,
        t.relname,
        `grant:${t.relname}`,
      );
    }
    // Keep this the last step, by this name: warm-pool tenants are made without it (provisioner.ts).
    step('grant role to runtime', grantTenantRoleToRuntime(ROLE, LANE));

    return {
      templateVersion,
      tables: tables.map((t) => t.relname),
      hypertables: dimensions.map((d) => d.table_name),
      steps,
    };
  }
}

/** The plan's statements for one tenant. Both names are validated again here; the lane follows from them. */
export function renderClonePlan(plan: ClonePlan, names: { schema: string; role: string }): string[] {
  const schemaName = assertTenantSchemaName(names.schema);
  const schema = ident(schemaName);
  const role = ident(assertTenantRoleName(names.role));
  const lane = ident(runtimeRoleOf(names.role));
  return plan.steps.map((s) =>
    s.sql.replaceAll(SCHEMA, schema).replaceAll(SCHEMA_NAME, schemaName).replaceAll(ROLE, role).replaceAll(LANE, lane),
  );
}
