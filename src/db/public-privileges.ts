/**
 * What every role (PUBLIC) may do in the platform's database, narrowed to what tenants
 * need. PostgreSQL and the extensions grant EXECUTE on their routines to PUBLIC, and
 * some of those harm other tenants: TimescaleDB's internal `drop_chunk(regclass)` drops
 * any chunk without checking who owns it, `merge_chunks` crashes the server on this
 * build, advisory locks are shared by the whole database (a tenant could hold the
 * platform's own locks), large objects and `pg_logical_emit_message` write without
 * bound and outside any schema. So:
 *
 * - every routine of TimescaleDB, pgvector and pgcrypto is revoked from PUBLIC, then
 *   the allowlist below is granted back: pure functions a tenant's queries use;
 * - the risky `pg_catalog` routines are revoked from PUBLIC and granted to the owner
 *   role, which coordinates platform work with advisory locks;
 * - CONNECT and TEMPORARY on the database are revoked from PUBLIC: the platform roles
 *   and the tenant-login group get CONNECT; nobody needs temp tables (they escape
 *   `temp_file_limit` and any schema quota).
 *
 * Runs at every superuser start-up, so an `ALTER EXTENSION ... UPDATE` that re-grants
 * PUBLIC is undone on the next start; the validator reports any drift in between.
 *
 * @example
 * await hardenPublicPrivileges(tx, 'tenantforge');
 */
import type { Tx } from './connect.ts';
import { EXTENSIONS_SCHEMA, ROLES, RUNTIME_ROLES } from './roles.ts';

/** Schemas whose every routine is revoked from PUBLIC (extension code, internal and user-facing). */
export const EXTENSION_ROUTINE_SCHEMAS = [
  '_timescaledb_functions',
  '_timescaledb_internal',
  '_timescaledb_debug',
  'timescaledb_experimental',
  EXTENSIONS_SCHEMA,
] as const;

/** TimescaleDB routines tenants may call: pure time bucketing and ordered aggregates. */
export const TIMESCALEDB_ALLOWED = ['time_bucket', 'first', 'last', 'histogram'] as const;

/**
 * pg_catalog routines no tenant may call. Advisory locks are one namespace for the
 * whole database; large objects live outside every schema (and can be granted to
 * another tenant's role, which then cannot be dropped); the last two write WAL or
 * shared queue space without storing anything a tenant owns.
 */
export const RISKY_CATALOG_ROUTINE_PATTERN =
  '^(pg_(try_)?advisory_|pg_advisory_unlock|lo_|loread$|lowrite$|pg_logical_emit_message$|pg_notify$)';

/**
 * SQL selecting the routines PUBLIC may execute by the allowlist: every pgvector
 * routine callable from SQL (none takes `internal`: those are index-method support),
 * and TimescaleDB's allowed ones in the extensions schema. One relation of `oid`.
 */
export const ALLOWED_ROUTINES_SQL = `
  select p.oid
  from pg_catalog.pg_proc p
  join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass and d.objid = p.oid and d.deptype = 'e'
  join pg_catalog.pg_extension e on e.oid = d.refobjid
  where (e.extname = 'vector' and not 'internal'::pg_catalog.regtype = any (p.proargtypes))
     or (e.extname = 'timescaledb' and p.pronamespace = '${EXTENSIONS_SCHEMA}'::pg_catalog.regnamespace
         and p.proname = any ('{${TIMESCALEDB_ALLOWED.join(',')}}'::text[]))`;

/** SQL selecting the risky pg_catalog routines (one relation of `oid`). */
export const RISKY_CATALOG_ROUTINES_SQL = `
  select p.oid from pg_catalog.pg_proc p
  where p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace and p.proname ~ '${RISKY_CATALOG_ROUTINE_PATTERN}'`;

/** Applies the rules above to the connected database. Needs a superuser; idempotent. */
export async function hardenPublicPrivileges(tx: Tx, database: string): Promise<void> {
  const db = `"${database.replaceAll('"', '""')}"`;
  const schemas = await tx<{ nspname: string }[]>`
    select nspname from pg_namespace where nspname = any(${[...EXTENSION_ROUTINE_SCHEMAS]}::text[])`;
  const inSchemas = schemas.map((s) => `"${s.nspname}"`).join(', ');
  await tx.unsafe(`revoke execute on all routines in schema ${inSchemas} from public`);
  // The platform's own code (clone-plan introspection, provisioning) runs as the owner.
  await tx.unsafe(`grant execute on all routines in schema ${inSchemas} to ${ROLES.owner}`);
  await tx.unsafe(`
    do $$
    declare r regprocedure;
    begin
      for r in ${ALLOWED_ROUTINES_SQL} loop
        execute format('grant execute on routine %s to public', r);
      end loop;
      for r in ${RISKY_CATALOG_ROUTINES_SQL} loop
        execute format('revoke execute on routine %s from public', r);
        execute format('grant execute on routine %s to ${ROLES.owner}', r);
      end loop;
    end $$`);
  await tx.unsafe(`revoke connect, temporary on database ${db} from public`);
  await tx.unsafe(
    `grant connect on database ${db} to ${[...RUNTIME_ROLES, ROLES.migrator, ROLES.owner, ROLES.tenantLogins].join(', ')}`,
  );
}
