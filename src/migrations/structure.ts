/**
 * A schema's structure as a set of normalised text items: columns (type, NOT NULL,
 * default), constraints, indexes and triggers (which include TimescaleDB's insert
 * blocker, so a hypertable shows as one). Items name tables and columns, never the
 * schema, so the template at a version and every tenant at that version give the same set. Policies
 * are left to the validator's policy checks, which hold each one to the canonical form
 * (stricter than "as in the template"), so a broken policy is reported once. One query serves both: the template snapshot taken when a
 * file is applied, and the drift check that compares each tenant with it.
 *
 * Run it with `search_path = pg_catalog, pg_temp`: type and function names are then
 * qualified the same way whoever runs it.
 *
 * @example
 * const items = await templateStructure(tx); // ['column orders.id uuid not null default gen_random_uuid()', ...]
 */
import type { Tx } from '../db/connect.ts';
import { TEMPLATE_SCHEMA } from '../db/roles.ts';

/** A postgres.js fragment (any row type: it is only ever nested in another query). */
// biome-ignore lint/suspicious/noExplicitAny: postgres.js has no exported type for a fragment of any row type
type Fragment = any;

/**
 * Rows (id, item) for each schema of `targets`, a relation with columns id (text), nsp
 * (the schema oid) and schema_name.
 */
export function structureItems(tx: Tx, targets: Fragment): Fragment {
  // Expressions (defaults, CHECKs, index predicates and expressions) are deparsed once per
  // distinct stored tree and table name, not once per tenant: pg_get_expr opens the table
  // it deparses for, which at thousands of tenants costs tens of seconds. Tenants cloned
  // or migrated alike store identical trees, so there are only a few of each. Rows carry
  // only the tree's hash (trees are kilobytes: carried along, they spill to disk); the
  // representatives' trees are fetched again by their object's key.
  return tx`
    with s as materialized (${targets}),
    rel as materialized (
      select s.id, c.oid as relid, quote_ident(c.relname) as relname
      from s join pg_class c on c.relnamespace = s.nsp
      where c.relkind in ('r', 'p') and not exists (select 1 from pg_inherits i where i.inhrelid = c.oid)
    ),
    objects as materialized (
      select rel.id, rel.relid, rel.relname, 'column ' || rel.relname || '.' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
               || case when a.attnotnull then ' not null' else '' end as head, ' default ' as sep,
             'd'::"char" as kind, a.attnum::oid as src, md5(d.adbin::text) as h
      from rel join pg_attribute a on a.attrelid = rel.relid and a.attnum > 0 and not a.attisdropped
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      union all
      select rel.id, rel.relid, rel.relname, 'constraint ' || rel.relname || '.' || quote_ident(k.conname) || ' ' || k.contype::text
               || ' (' || coalesce((select string_agg(quote_ident(a.attname), ', ' order by o) from unnest(k.conkey) with ordinality u(n, o)
                                    join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n), '') || ')'
               || case when k.contype = 'f' then ' references ' || quote_ident(f.relname) || ' ' || k.confupdtype::text || k.confdeltype::text else '' end
               || case when k.convalidated then '' else ' not valid' end, ' check ', 'c', k.oid, md5(k.conbin::text)
      from rel join pg_constraint k on k.conrelid = rel.relid left join pg_class f on f.oid = k.confrelid
      union all
      select rel.id, rel.relid, rel.relname, 'index ' || rel.relname || '.' || quote_ident(ic.relname) || ' ' || am.amname
               || case when i.indisunique then ' unique' else '' end
               || ' (' || (select string_agg(coalesce(quote_ident(a.attname), 'expr'), ', ' order by o) from unnest(i.indkey::int2[]) with ordinality u(n, o)
                           left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.n) || ') '
               || i.indclass::text || coalesce(' ' || array_to_string(ic.reloptions, ','), ''), ' where ', 'p', i.indexrelid, md5(i.indpred::text)
      from rel join pg_index i on i.indrelid = rel.relid join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
      union all
      select rel.id, rel.relid, rel.relname, 'index-expressions ' || rel.relname || '.' || quote_ident(ic.relname), ' ', 'e', i.indexrelid, md5(i.indexprs::text)
      from rel join pg_index i on i.indrelid = rel.relid join pg_class ic on ic.oid = i.indexrelid
      where i.indexprs is not null
    ),
    representatives as materialized (
      select distinct on (relname, h) relname, h, relid, kind, src from objects where h is not null order by relname, h
    ),
    deparsed as materialized (
      select r.relname, r.h, pg_get_expr(case r.kind
               when 'd' then (select d.adbin from pg_attrdef d where d.adrelid = r.relid and d.adnum = r.src::int)
               when 'c' then (select k.conbin from pg_constraint k where k.oid = r.src)
               when 'p' then (select i.indpred from pg_index i where i.indexrelid = r.src)
               else (select i.indexprs from pg_index i where i.indexrelid = r.src) end, r.relid) as text
      from representatives r
    )
    select o.id, o.head || coalesce(o.sep || x.text, '') as item
    from objects o left join deparsed x on x.relname = o.relname and x.h = o.h
    union all
    select rel.id, 'trigger ' || rel.relname || '.' || quote_ident(g.tgname) || ' ' || g.tgtype::text || ' ' || g.tgfoid::regprocedure::text
             || case when g.tgenabled = 'D' then ' disabled' else '' end
    from rel join pg_trigger g on g.tgrelid = rel.relid and not g.tgisinternal`;
}

/** The template's structure now. */
export async function templateStructure(tx: Tx): Promise<string[]> {
  await tx`select set_config('search_path', 'pg_catalog, pg_temp', true)`;
  const target = tx`select 'template'::text as id, oid as nsp, nspname::text as schema_name from pg_namespace where nspname = ${TEMPLATE_SCHEMA}`;
  const rows = await tx<{ item: string }[]>`select item from (${structureItems(tx, target)}) x order by item`;
  return rows.map((r) => r.item);
}
