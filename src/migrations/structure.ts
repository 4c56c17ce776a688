/**
 * A schema's structure as a set of normalised text items: columns (type, NOT NULL,
 * default), constraints, indexes and triggers (which include TimescaleDB's insert
 * blocker, so a hypertable shows as one). The tenant's schema reads as `$s`, so the
 * template at a version and every tenant at that version give the same set. Policies
 * are left to the validator's policy checks, which hold each one to the canonical form
 * (stricter than "as in the template"), so a broken policy is reported once. One query serves both: the template snapshot taken when a
 * file is applied, and the drift check that compares each tenant with it.
 *
 * Run it with `search_path = pg_catalog, pg_temp`: deparsed names are then qualified the
 * same way whoever runs it.
 *
 * @example
 * const items = await templateStructure(tx); // ['column orders.id uuid not null default gen_random_uuid()', ...]
 */
import type { Tx } from '../db/connect.ts';
import { TEMPLATE_SCHEMA } from '../db/roles.ts';

/** A postgres.js fragment (any row type: it is only ever nested in another query). */
type Fragment = any;

/**
 * Rows (id, item) for each schema of `targets`, a relation with columns id (text), nsp
 * (the schema oid) and schema_name.
 */
export function structureItems(tx: Tx, targets: Fragment): Fragment {
  return tx`
    with s as materialized (${targets}),
    rel as materialized (
      select s.id, s.schema_name, c.oid as relid, quote_ident(c.relname) as relname
      from s join pg_class c on c.relnamespace = s.nsp
      where c.relkind in ('r', 'p') and not exists (select 1 from pg_inherits i where i.inhrelid = c.oid)
    )
    select rel.id, 'column ' || rel.relname || '.' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
             || case when a.attnotnull then ' not null' else '' end || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as item
    from rel join pg_attribute a on a.attrelid = rel.relid and a.attnum > 0 and not a.attisdropped
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    union all
    select rel.id, 'constraint ' || rel.relname || '.' || quote_ident(k.conname) || ' '
             || replace(pg_get_constraintdef(k.oid), 'REFERENCES ' || quote_ident(rel.schema_name) || '.', 'REFERENCES $s.')
    from rel join pg_constraint k on k.conrelid = rel.relid
    union all
    select rel.id, 'index ' || rel.relname || '.' || quote_ident(ic.relname) || ' '
             || replace(pg_get_indexdef(i.indexrelid), ' ON ' || quote_ident(rel.schema_name) || '.', ' ON $s.')
    from rel join pg_index i on i.indrelid = rel.relid join pg_class ic on ic.oid = i.indexrelid
    union all
    select rel.id, 'trigger ' || rel.relname || '.' || quote_ident(g.tgname) || ' '
             || replace(pg_get_triggerdef(g.oid), ' ON ' || quote_ident(rel.schema_name) || '.', ' ON $s.')
    from rel join pg_trigger g on g.tgrelid = rel.relid and not g.tgisinternal`;
}

/** The template's structure now. */
export async function templateStructure(tx: Tx): Promise<string[]> {
  await tx`select set_config('search_path', 'pg_catalog, pg_temp', true)`;
  const target = tx`select 'template'::text as id, oid as nsp, nspname::text as schema_name from pg_namespace where nspname = ${TEMPLATE_SCHEMA}`;
  const rows = await tx<{ item: string }[]>`select item from (${structureItems(tx, target)}) x order by item`;
  return rows.map((r) => r.item);
}
