/**
 * Installs what the platform needs inside a database: the extensions (in their own
 * schema), the platform roles and their database-level rights. Needs a superuser
 * connection; with any other role, `checkInstallation` only reports what is missing.
 *
 * @example
 * if (await canInstall(sql)) await installPlatform(sql, { appPassword });
 */
import { extensionHint, MissingExtensionError, unavailableExtensions, type Sql, type Tx } from './connect.ts';
import { hardenPublicPrivileges } from './public-privileges.ts';
import { runtimeRoleOfSql } from './names.ts';
import {
  EXTENSIONS_SCHEMA,
  LEGACY_RUNTIME_ROLE,
  PLATFORM_ROLES,
  REQUIRED_EXTENSIONS,
  ROLES,
  RUNTIME_ROLES,
} from './roles.ts';
import { LOCKS } from './locks.ts';
import { withRetry } from './retry.ts';
import { compareVersions } from './versions.ts';

/** Whether the connected role is a superuser (only superusers may create TimescaleDB). */
export async function canInstall(sql: Sql): Promise<boolean> {
  const [row] = await sql<{ rolsuper: boolean }[]>`select rolsuper from pg_roles where rolname = current_user`;
  return row?.rolsuper === true;
}

export type InstallOptions = {
  /** Password set on the runtime lane roles, so the service can log in as them. */
  appPassword: string;
};

/** Idempotent; safe to run from several instances (and databases of one cluster) at once. */
export async function installPlatform(sql: Sql, options: InstallOptions): Promise<void> {
  const unavailable = await unavailableExtensions(sql);
  if (unavailable.length) {
    throw new MissingExtensionError(
      `the server lacks the extension(s) ${unavailable.join(', ')}. ${unavailable.map(extensionHint).join('. ')}`,
    );
  }
  // Roles are cluster-wide: another database of the same cluster may be installing at
  // the same moment, so this part retries on catalog races.
  await withRetry(() =>
    sql.begin(async (tx) => {
      await ensureRole(tx, ROLES.owner, 'nologin createrole');
      await ensureRole(tx, ROLES.migrator, 'nologin');
      await ensureRole(tx, ROLES.validator, 'nologin');
      await ensureRole(tx, ROLES.tenantLogins, 'nologin');
      for (const lane of RUNTIME_ROLES) {
        await ensureRole(tx, lane, 'login noinherit');
        await tx.unsafe(`alter role ${lane} password ${quoteLiteral(options.appPassword)}`);
        // Tenant queries are short: JIT compilation would cost more than it saves (see runtime/local-cluster.ts).
        await tx.unsafe(`alter role ${lane} set jit = off`);
      }
      await retireLegacyRuntimeRole(tx);
      await tx.unsafe(`grant ${ROLES.owner} to ${ROLES.migrator}`);
      // Lets the owner end a tenant login's sessions on rotation, suspension and deletion.
      await tx.unsafe(`grant pg_signal_backend to ${ROLES.owner}`);
      // Lets the owner pin the tenant setting on a tenant's direct login (ALTER ROLE ... SET).
      await tx.unsafe(`grant set on parameter app.current_tenant_id to ${ROLES.owner}`);
      // Lets the owner pin a limit a tenant login cannot lift itself (superuser-only to change).
      await tx.unsafe(`grant set on parameter temp_file_limit to ${ROLES.owner}`);
      // The isolation validator switches to tf_validator (SET ROLE) from the migrator's connections.
      await tx.unsafe(`grant ${ROLES.validator} to ${ROLES.migrator}`);
    }),
  );
  // Database-local, serialised by an advisory lock, and never retried on one backend:
  // TimescaleDB refuses a second CREATE EXTENSION in a session that already loaded it.
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${LOCKS.install}))`;
    await tx.unsafe(`create schema if not exists ${EXTENSIONS_SCHEMA}`);
    await tx.unsafe(`grant usage on schema ${EXTENSIONS_SCHEMA} to public`);
    for (const ext of REQUIRED_EXTENSIONS) {
      await tx.unsafe(`create extension if not exists ${ext} schema ${EXTENSIONS_SCHEMA}`);
    }
    await updatePgvector(tx);
    const [db] = await tx<{ name: string }[]>`select current_database() as name`;
    await tx.unsafe(`grant create on database "${db!.name.replaceAll('"', '""')}" to ${ROLES.owner}`);
    await hardenPublicPrivileges(tx, db!.name);
  });
}

/**
 * A newer pgvector build on the server (the bootstrap upgrades older ones) is only a
 * file on disk until each database runs ALTER EXTENSION ... UPDATE: its fixes (HNSW
 * build overflow in 0.8.2, index corruption on vacuum in 0.8.3) need the new version's
 * SQL objects. pgvector ships an upgrade script for every step, so this is safe to run
 * on every start; it does nothing when the database is current.
 */
async function updatePgvector(tx: Tx): Promise<void> {
  const [ext] = await tx<{ installed: string | null; available: string }[]>`
    select installed_version as installed, default_version as available from pg_available_extensions where name = 'vector'`;
  if (ext?.installed && compareVersions(ext.installed, ext.available) < 0)
    await tx.unsafe('alter extension vector update');
}

/**
 * A database installed by an earlier release has one runtime role, tf_app, a member of
 * every tenant role: each membership moves to the tenant's lane, and tf_app loses its
 * LOGIN (kept, NOLOGIN and member of nothing, so grants naming it elsewhere do not break).
 */
async function retireLegacyRuntimeRole(tx: Tx): Promise<void> {
  const [legacy] = await tx`select 1 from pg_roles where rolname = ${LEGACY_RUNTIME_ROLE}`;
  if (!legacy) return;
  await tx.unsafe(`
    do $$ declare r text; begin
      for r in select g.rolname from pg_auth_members m
               join pg_roles g on g.oid = m.roleid join pg_roles a on a.oid = m.member
               where a.rolname = '${LEGACY_RUNTIME_ROLE}' and g.rolname ~ '^tenant_[0-9a-f]+_role$' loop
        execute format('grant %I to %I', r, ${runtimeRoleOfSql('r')});
        execute format('revoke %I from ${LEGACY_RUNTIME_ROLE}', r);
      end loop;
    end $$`);
  await tx.unsafe(`alter role ${LEGACY_RUNTIME_ROLE} nologin`);
}

async function ensureRole(tx: Tx, name: string, attributes: string): Promise<void> {
  const [exists] = await tx`select 1 from pg_roles where rolname = ${name}`;
  const safety = 'nosuperuser nocreatedb noreplication nobypassrls';
  await tx.unsafe(`${exists ? 'alter' : 'create'} role ${name} ${attributes} ${safety}`);
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export type InstallationProblem = { what: string; fix: string };

/** What a non-superuser start-up finds missing (empty when all is in place). */
export async function checkInstallation(sql: Sql): Promise<InstallationProblem[]> {
  const problems: InstallationProblem[] = [];
  const roles = await sql<{ rolname: string }[]>`select rolname from pg_roles where rolname = any(${PLATFORM_ROLES})`;
  for (const role of PLATFORM_ROLES) {
    if (!roles.some((r) => r.rolname === role)) {
      problems.push({
        what: `role ${role} is missing`,
        fix: 'start once with a superuser DATABASE_URL to create the platform roles',
      });
    }
  }
  const exts = await sql<
    { extname: string }[]
  >`select extname from pg_extension where extname = any(${[...REQUIRED_EXTENSIONS]})`;
  const unavailable = await unavailableExtensions(sql);
  for (const ext of REQUIRED_EXTENSIONS) {
    if (exts.some((e) => e.extname === ext)) continue;
    const fix = unavailable.includes(ext)
      ? extensionHint(ext)
      : `a superuser runs: create schema if not exists ${EXTENSIONS_SCHEMA}; create extension ${ext} schema ${EXTENSIONS_SCHEMA}`;
    problems.push({ what: `extension ${ext} is missing`, fix });
  }
  return problems;
}
