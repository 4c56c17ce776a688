/**
 * Tenant plans: what an existing tenant runs to follow one template file.
 *
 * A template file is applied once, to the template. Its tenant plan is compiled in the
 * same transaction by diffing the template before and after the file: the clone plan
 * (the DDL a new tenant would get, keyed by object) plus the columns and CHECK
 * constraints `LIKE` copies. So a table the file creates is cloned with exactly the
 * provisioner's steps (grants, `REVOKE ... FROM PUBLIC`, RLS forced, policies `TO` the
 * tenant role, chunks in the tenant's schema), and a changed table gets only its
 * ALTERs. Shared objects (domains, functions) stay in the template, as for a clone.
 * Columns are matched by position (`attnum`), so a rename is a rename, not drop + add.
 *
 * @example
 * const before = await readShape(tx);
 * await tx.unsafe(file);
 * const plan = diffShapes(before, await readShape(tx));  // { steps: [{ name, sql }] }
 * const statements = renderClonePlan({ ...plan, templateVersion, tables: [], hypertables: [] }, names);
 */
import type { Tx } from '../db/connect.ts';
import { TEMPLATE_SCHEMA } from '../db/roles.ts';
import { compileClonePlanIn, TemplateError, type ClonePlan, type PlanStep } from '../provisioning/clone-plan.ts';

/** The schema placeholder of clone-plan steps (rendered per tenant by renderClonePlan). */
const SCHEMA = '\u0000schema\u0000';

export type TenantPlan = { steps: PlanStep[]; data: string | null };

type Column = {
  table_oid: number;
  relname: string;
  attnum: number;
  attname: string;
  type: string;
  notnull: boolean;
  default: string | null;
};
type Check = { relname: string; conname: string; def: string };

export type TemplateShape = { plan: ClonePlan | null; tables: Map<number, string>; columns: Column[]; checks: Check[] };

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const inTenant = (table: string) => `${SCHEMA}.${ident(table)}`;

/** The template as the diff sees it. Throws TemplateError when the template breaks a rule. */
export async function readShape(tx: Tx): Promise<TemplateShape> {
  await tx`select set_config('search_path', '', true)`;
  const tables = await tx<{ oid: number; relname: string }[]>`
    select c.oid, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${TEMPLATE_SCHEMA} and c.relkind in ('r', 'p')`;
  if (tables.length === 0) return { plan: null, tables: new Map(), columns: [], checks: [] };
  const plan = await compileClonePlanIn(tx, '');
  await tx`select set_config('search_path', '', true)`;
  const columns = await tx<Column[]>`
    select c.oid as table_oid, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as notnull,
           pg_get_expr(d.adbin, d.adrelid) as default
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where n.nspname = ${TEMPLATE_SCHEMA} and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
    order by c.oid, a.attnum`;
  const checks = await tx<Check[]>`
    select c.relname, k.conname, pg_get_constraintdef(k.oid) as def
    from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${TEMPLATE_SCHEMA} and k.contype = 'c' order by c.oid, k.conname`;
  return { plan, tables: new Map(tables.map((t) => [t.oid, t.relname])), columns, checks };
}

/** The statements that take a tenant from `before` to `after`. Throws TemplateError for changes it cannot carry. */
export function diffShapes(before: TemplateShape, after: TemplateShape): PlanStep[] {
  const problems: string[] = [];
  const existing = new Set<string>();
  const created = new Set<string>();
  const dropped: string[] = [];
  for (const [oid, name] of after.tables) {
    const old = before.tables.get(oid);
    if (old === undefined) created.add(name);
    else if (old !== name)
      problems.push(
        `table ${old} was renamed to ${name}: add the new table and copy the rows instead (expand/contract)`,
      );
    else existing.add(name);
  }
  for (const [oid, name] of before.tables) if (!after.tables.has(oid)) dropped.push(name);
  if (problems.length)
    throw new TemplateError(`the template change cannot be applied to tenants: ${problems.join('; ')}`);

  const steps: PlanStep[] = [];
  const step = (name: string, sql: string) => steps.push({ name, sql });
  const keyed = (shape: TemplateShape) =>
    new Map((shape.plan?.steps ?? []).filter((s) => s.key && existing.has(s.table!)).map((s) => [s.key!, s]));
  const was = keyed(before);
  const now = keyed(after);

  // 1. What goes away (or changes), dependants first: reverse plan order.
  for (const s of [...was.values()].reverse()) {
    if (now.get(s.key!)?.sql === s.sql) continue;
    const [kind, table, name] = s.key!.split(':') as [string, string, string];
    if (kind === 'index') step(`drop index ${name}`, `drop index ${SCHEMA}.${ident(name)}`);
    else if (kind === 'key' || kind === 'fk')
      step(`drop constraint ${table}.${name}`, `alter table ${inTenant(table)} drop constraint ${ident(name)}`);
    else if (kind === 'trigger')
      step(`drop trigger ${table}.${name}`, `drop trigger ${ident(name)} on ${inTenant(table)}`);
    else if (kind === 'policy')
      step(`drop policy ${table}.${name}`, `drop policy ${ident(name)} on ${inTenant(table)}`);
    else if (kind === 'hypertable') problems.push(`${table} is no longer a hypertable: not supported`);
    else if (!now.has(s.key!)) problems.push(`${s.name} was removed from an existing table: not supported`);
  }
  const checksBefore = new Map(
    before.checks.filter((c) => existing.has(c.relname)).map((c) => [`${c.relname}:${c.conname}`, c]),
  );
  const checksAfter = new Map(
    after.checks.filter((c) => existing.has(c.relname)).map((c) => [`${c.relname}:${c.conname}`, c]),
  );
  for (const [key, c] of checksBefore) {
    if (checksAfter.get(key)?.def !== c.def)
      step(`drop check ${key}`, `alter table ${inTenant(c.relname)} drop constraint ${ident(c.conname)}`);
  }

  // 2. Columns of existing tables, matched by table oid and attnum.
  const columnKey = (c: Column) => `${c.table_oid}:${c.attnum}`;
  const oldColumns = new Map(before.columns.filter((c) => existing.has(c.relname)).map((c) => [columnKey(c), c]));
  const newColumns = new Map(after.columns.filter((c) => existing.has(c.relname)).map((c) => [columnKey(c), c]));
  for (const [key, c] of oldColumns) {
    if (!newColumns.has(key))
      step(
        `drop column ${c.relname}.${c.attname}`,
        `alter table ${inTenant(c.relname)} drop column ${ident(c.attname)}`,
      );
  }
  for (const [key, c] of newColumns) {
    const table = inTenant(c.relname);
    const old = oldColumns.get(key);
    if (!old) {
      step(
        `add column ${c.relname}.${c.attname}`,
        `alter table ${table} add column ${ident(c.attname)} ${c.type}${c.default !== null ? ` default ${c.default}` : ''}${c.notnull ? ' not null' : ''}`,
      );
      continue;
    }
    if (old.attname !== c.attname)
      step(
        `rename column ${c.relname}.${old.attname}`,
        `alter table ${table} rename column ${ident(old.attname)} to ${ident(c.attname)}`,
      );
    const column = `alter table ${table} alter column ${ident(c.attname)}`;
    if (old.type !== c.type) step(`type of ${c.relname}.${c.attname}`, `${column} type ${c.type}`);
    if (old.default !== c.default)
      step(
        `default of ${c.relname}.${c.attname}`,
        c.default === null ? `${column} drop default` : `${column} set default ${c.default}`,
      );
    if (old.notnull !== c.notnull)
      step(`not null of ${c.relname}.${c.attname}`, `${column} ${c.notnull ? 'set' : 'drop'} not null`);
  }

  // 3. New tables: exactly the provisioner's steps for them.
  // The table itself is spelled out rather than `LIKE`d: a tenant catching up several
  // files at once must get the table as this file left it, not as the template is now.
  for (const s of after.plan?.steps ?? []) {
    if (!s.table || !created.has(s.table)) continue;
    if (s.key === `table:${s.table}`) step(s.name, createTable(s.table, after));
    else steps.push({ name: s.name, sql: s.sql });
  }

  // 4. What is new (or changed) on existing tables, in plan order.
  for (const [key, c] of checksAfter) {
    if (checksBefore.get(key)?.def !== c.def)
      step(`add check ${key}`, `alter table ${inTenant(c.relname)} add constraint ${ident(c.conname)} ${c.def}`);
  }
  for (const s of now.values()) {
    if (was.get(s.key!)?.sql === s.sql) continue;
    if (s.key!.startsWith('hypertable:'))
      problems.push(`${s.table} became a hypertable: create a new hypertable and copy the rows instead`);
    else if (was.has(s.key!) && !/^(index|key|fk|trigger|policy):/.test(s.key!))
      problems.push(`${s.name} changed: not supported`);
    else steps.push({ name: s.name, sql: s.sql });
  }

  // 5. Dropped tables, last: foreign keys to them went in step 1.
  for (const name of dropped) step(`drop table ${name}`, `drop table ${inTenant(name)}`);
  if (problems.length)
    throw new TemplateError(`the template change cannot be applied to tenants: ${problems.join('; ')}`);
  return steps;
}

/** CREATE TABLE with the columns, defaults, NOT NULLs and CHECKs `LIKE ... INCLUDING ALL` would copy. */
function createTable(table: string, shape: TemplateShape): string {
  const parts = shape.columns
    .filter((c) => c.relname === table)
    .map(
      (c) =>
        `${ident(c.attname)} ${c.type}${c.default !== null ? ` default ${c.default}` : ''}${c.notnull ? ' not null' : ''}`,
    );
  for (const c of shape.checks.filter((c) => c.relname === table))
    parts.push(`constraint ${ident(c.conname)} ${c.def}`);
  return `create table ${inTenant(table)} (${parts.join(', ')})`;
}

/**
 * The plan as stored (jsonb cannot hold the NUL that marks clone-plan placeholders, so
 * they are kept as the unit separator, which no SQL text contains) and back.
 */
export function storedPlan(plan: TenantPlan): TenantPlan {
  return { ...plan, steps: plan.steps.map((s) => ({ name: s.name, sql: s.sql.replaceAll('\u0000', '\u001f') })) };
}

export function loadedPlan(plan: TenantPlan): TenantPlan {
  return { ...plan, steps: plan.steps.map((s) => ({ name: s.name, sql: s.sql.replaceAll('\u001f', '\u0000') })) };
}
