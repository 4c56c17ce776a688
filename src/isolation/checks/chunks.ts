/**
 * TimescaleDB chunks. A chunk is a plain table inheriting from its hypertable; reading
 * it by name applies none of the hypertable's policies (TimescaleDB issue #7830), and
 * TimescaleDB refuses RLS on chunks. So a chunk's grants and schema are its isolation:
 *   - chunk_grants: a chunk grants nothing its hypertable does not;
 *   - chunk_schema: chunks live in their tenant's schema, which only that tenant may
 *     use (not `_timescaledb_internal`, which every role can);
 *   - chunk_rls_bypass: the hypertable grants nothing to roles but its tenant's, since
 *     such grants are copied to its chunks, where RLS does not hold.
 * The tenant's own role can read its own chunks directly, skipping RLS: accepted, as
 * only its own rows live there (README, "Isolation model").
 *
 * @example
 * const violations = await chunkChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { granteeName, granteeSql, tenantTables, type CheckContext } from './context.ts';

export async function chunkChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx } = ctx;
  const who = granteeName(tx, tx`f.grantee`);
  const whom = granteeSql(tx, tx`f.grantee`);
  return tx<Violation[]>`
    with tt as materialized (${tenantTables(ctx)}),
    ht as materialized (
      select tt.*, coalesce(tt.relacl, acldefault('r', tt.relowner)) as acl
      from tt where tt.hypertable
    ),
    chunks as materialized (
      select ht.id, ht.slug, ht.schema_name, ht.relname, ht.nsp, ht.acl, ht.role_oid,
             k.relnamespace as chunk_nsp, kn.nspname as chunk_schema, k.relname as chunk_name, k.relowner as chunk_owner,
             coalesce(k.relacl, acldefault('r', k.relowner)) as chunk_acl
      from ht join pg_inherits i on i.inhparent = ht.relid
      join pg_class k on k.oid = i.inhrelid join pg_namespace kn on kn.oid = k.relnamespace
    ),
    wider as (
      select c.id, c.slug, c.schema_name, c.relname, c.chunk_schema, c.chunk_name, a.grantee,
             string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from chunks c cross join lateral aclexplode(c.chunk_acl) a
      where a.grantee <> c.chunk_owner
        and not exists (select 1 from aclexplode(c.acl) h where h.grantee = a.grantee and h.privilege_type = a.privilege_type)
      group by c.id, c.slug, c.schema_name, c.relname, c.chunk_schema, c.chunk_name, a.grantee
    ),
    shared as (
      select ht.id, ht.slug, ht.schema_name, ht.relname, a.grantee, string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from ht cross join lateral aclexplode(ht.acl) a
      where a.grantee <> ht.relowner and a.grantee <> ht.role_oid
      group by ht.id, ht.slug, ht.schema_name, ht.relname, a.grantee
    )
    select 'chunk_grants' as "check", f.id as "tenantId", f.slug as "tenantSlug", f.chunk_schema || '.' || f.chunk_name as object,
           format('chunk %s.%s of %s.%s gives %s %s, which its hypertable does not%s', f.chunk_schema, f.chunk_name, f.schema_name, f.relname, ${who}, f.privs,
                  case when ${who} ~ '^tenant_[0-9a-f]+_role$' then ': another tenant can read this tenant''s rows directly'
                       when f.grantee = 0 then ': every role can read this tenant''s rows directly' else '' end) as rule,
           format('revoke %s on table %I.%I from %s', f.privs, f.chunk_schema, f.chunk_name, ${whom}) as fix,
           true as autofix
    from wider f
    union all
    select 'chunk_schema', c.id, c.slug, c.chunk_schema || '.' || c.chunk_name,
           format('chunk %s of %s.%s lives in schema %s, outside its tenant''s schema, where RLS does not cover it', c.chunk_name, c.schema_name, c.relname, c.chunk_schema),
           format('alter table %I.%I set schema %I', c.chunk_schema, c.chunk_name, c.schema_name),
           false
    from chunks c where c.chunk_nsp <> c.nsp
    union all
    select 'chunk_rls_bypass', f.id, f.slug, f.schema_name || '.' || f.relname,
           format('hypertable %s.%s gives %s %s: TimescaleDB copies that to its chunks, which %s can read directly, skipping the RLS policies',
                  f.schema_name, f.relname, ${who}, f.privs, ${who}),
           format('revoke %s on table %I.%I from %s', f.privs, f.schema_name, f.relname, ${whom}),
           true
    from shared f`;
}
