/**
 * Routines every role may run. PostgreSQL and the extensions grant EXECUTE to PUBLIC,
 * and some of those reach past a tenant's own schema: TimescaleDB's internal
 * `drop_chunk` drops any tenant's chunk, `merge_chunks` crashes this server build,
 * advisory locks are shared by the whole database. Start-up revokes them (see
 * db/public-privileges.ts); an `ALTER EXTENSION ... UPDATE` or a hand-made grant can
 * bring one back, and this check reports each such routine.
 *
 * @example
 * const violations = await routineChecks(ctx);
 */
import {
  ALLOWED_ROUTINES_SQL,
  EXTENSION_ROUTINE_SCHEMAS,
  RISKY_CATALOG_ROUTINES_SQL,
} from '../../db/public-privileges.ts';
import type { Violation } from './catalog.ts';
import type { CheckContext } from './context.ts';

export async function routineChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx, whole } = ctx;
  // Platform-wide: one tenant's run does not restate it.
  if (!whole) return [];
  return tx<Violation[]>`
    with allowed as materialized (${tx.unsafe(ALLOWED_ROUTINES_SQL)}),
    risky as materialized (${tx.unsafe(RISKY_CATALOG_ROUTINES_SQL)})
    select 'routine_privileges' as "check", null as "tenantId", null as "tenantSlug", p.oid::regprocedure::text as object,
           format('PUBLIC, and so every tenant role and login, may execute %s, which is not on the allowlist', p.oid::regprocedure) as rule,
           format('revoke execute on routine %s from public', p.oid::regprocedure) as fix,
           true as autofix
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where (n.nspname = any(${[...EXTENSION_ROUTINE_SCHEMAS]}::text[]) or p.oid in (select oid from risky))
      and p.oid not in (select oid from allowed)
      -- No ACL means the default: EXECUTE for PUBLIC.
      and (p.proacl is null or exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0 and a.privilege_type = 'EXECUTE'))`;
}
