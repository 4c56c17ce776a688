/**
 * A schema's structure as the catalog reports it (columns, constraints, indexes,
 * policies, triggers, hypertable dimensions, RLS and owners), with the schema's own name
 * normalised, so the template and a tenant, or two tenants, compare with toEqual.
 *
 * @example
 * expect(await shape(su, tenant.schema)).toEqual(await shape(su, 'tf_template'));
 */
import type { Sql } from '../../src/db/connect.ts';

const norm = (text: string | null, schema: string) =>
  text?.replaceAll(`"${schema}".`, 'S.').replaceAll(`${schema}.`, 'S.') ?? null;

export async function shape(su: Sql, schema: string) {
  const columns = await su`
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) as default
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where n.nspname = ${schema} and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
      and c.relname not like '\\_hyper%' order by 1, 2`;
  const constraints = await su`
    select c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) as def
    from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname not like '\\_hyper%' order by 1, 2`;
  const indexes = await su`
    select tablename, indexname, indexdef as def
    from pg_indexes where schemaname = ${schema} and tablename not like '\\_hyper%' order by 1, 2`;
  const policies = await su`
    select tablename, policyname, permissive, cmd, qual, with_check from pg_policies where schemaname = ${schema} order by 1, 2`;
  const triggers = await su`
    select c.relname, g.tgname, pg_get_triggerdef(g.oid) as def
    from pg_trigger g join pg_class c on c.oid = g.tgrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and not g.tgisinternal and c.relname not like '\\_hyper%' order by 1, 2`;
  const dimensions = await su`
    select hypertable_name, column_name, time_interval::text from timescaledb_information.dimensions where hypertable_schema = ${schema} order by 1`;
  const rls = await su`
    select c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) as owner
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = ${schema} and c.relkind = 'r' and c.relname not like '\\_hyper%' order by 1`;
  return {
    columns: [...columns],
    constraints: constraints.map((c) => ({ ...c, def: norm(c.def, schema) })),
    indexes: indexes.map((i) => ({ ...i, def: norm(i.def, schema) })),
    policies: [...policies],
    // Trigger functions are shared: tenant triggers call the template's function.
    triggers: triggers.map((g) => ({
      ...g,
      def: g.def.replace(` ON ${schema}.`, ' ON S.').replace(` ON "${schema}".`, ' ON S.'),
    })),
    dimensions: [...dimensions],
    rls: [...rls],
  };
}
