/**
 * Tenant role DDL, in one place: the statements that create a tenant's role, give or
 * take the runtime role's way into it, create or rotate the tenant's direct login, and
 * drop both roles. Each function returns statements for the caller's transaction; names
 * are validated again (db/names.ts) before they reach SQL. Every list starts with the
 * role-DDL advisory lock where it changes shared role catalogs: concurrent role DDL can
 * fail with "tuple concurrently updated".
 *
 * @example
 * await tx.unsafe(asOwner(setTenantAccess({ schema, role }, false)));
 * await terminateSessions(tx, tenantLoginName(schema));
 */
import type { Tx } from '../db/connect.ts';
import { ROLE_DDL_LOCK } from '../db/locks.ts';
import {
  assertTenantRoleName,
  assertTenantSchemaName,
  runtimeRoleOf,
  tenantLoginName,
  tenantRoleName,
} from '../db/names.ts';
import { ROLES } from '../db/roles.ts';
import { type LoginOwner, pinLoginSettings } from './login-settings.ts';

/** A tenant role holds grants only: it cannot log in, and inherits or creates nothing. */
const TENANT_ROLE_ATTRIBUTES = 'nologin noinherit nosuperuser nocreatedb nocreaterole noreplication nobypassrls';

/** `role`: a quoted identifier (or the clone plan's placeholder for one). */
export const createTenantRole = (role: string) => `create role ${role} ${TENANT_ROLE_ATTRIBUTES}`;

/**
 * The runtime reaches tenant data only through membership of the tenant's role (SET ROLE
 * in withTenant), held by the tenant's lane (`runtimeRoleOf`). `role` and `lane` are
 * quoted identifiers (or the clone plan's placeholders for them).
 */
export const grantTenantRoleToRuntime = (role: string, lane: string) => `grant ${role} to ${lane}`;

/** Statements run as the owner role (which holds CREATEROLE), then back to the session's role. */
export const asOwner = (statements: string[]) =>
  [`set local role ${ROLES.owner}`, ...statements, 'reset role'].join(';\n');

/**
 * Gives or takes every way into a tenant at once (suspension, deletion): the runtime
 * role's membership and the direct login's LOGIN attribute. End the login's sessions
 * after taking access (`terminateSessions`).
 */
export function setTenantAccess(names: { schema: string; role: string }, allowed: boolean): string[] {
  const role = `"${assertTenantRoleName(names.role)}"`;
  const lane = `"${runtimeRoleOf(names.role)}"`;
  const login = tenantLoginName(names.schema);
  return [
    ROLE_DDL_LOCK,
    allowed ? grantTenantRoleToRuntime(role, lane) : `revoke ${role} from ${lane}`,
    `do $$ begin if exists (select from pg_roles where rolname = '${login}') then alter role "${login}" ${allowed ? 'login' : 'nologin'}; end if; end $$`,
  ];
}

/**
 * Drops a tenant's schema, role and direct login. `DROP OWNED BY` first removes what ties
 * the roles to other objects (default privileges a login set anywhere, grants other
 * tenants' logins made to this role), which would otherwise make `DROP ROLE` fail; the
 * owner joins both roles for that, inside the transaction only.
 */
export function dropTenantRoles(names: { schema: string; role: string }): string[] {
  const schema = assertTenantSchemaName(names.schema);
  const role = assertTenantRoleName(names.role);
  const login = tenantLoginName(schema);
  return [
    ROLE_DDL_LOCK,
    `do $$ declare r text; begin
       foreach r in array array['${role}', '${login}'] loop
         if exists (select from pg_roles where rolname = r) then
           execute format('grant %I to ${ROLES.owner}', r);
           execute format('drop owned by %I', r);
         end if;
       end loop;
     end $$`,
    `drop schema if exists "${schema}" cascade`,
    `drop role if exists "${login}"`,
    `drop role if exists "${role}"`,
  ];
}

/**
 * Creates the tenant's direct login (a member of its role and of the login group that
 * holds CONNECT), or gives it a new password and connection limit; pins its settings.
 * `verifier`: the SCRAM verifier of the password, so the password itself is never in SQL.
 */
export function upsertTenantLogin(
  tenant: LoginOwner,
  options: { exists: boolean; verifier: string; connectionLimit: number },
): string[] {
  const username = tenantLoginName(tenant.schema);
  const attributes = `login inherit connection limit ${options.connectionLimit} password '${options.verifier}'`;
  return [
    ROLE_DDL_LOCK,
    options.exists
      ? `alter role "${username}" ${attributes}`
      : `create role "${username}" ${attributes} nosuperuser nocreatedb nocreaterole noreplication nobypassrls in role "${tenantRoleName(tenant.schema)}"`,
    // The group holds CONNECT on the database (PUBLIC does not).
    `grant ${ROLES.tenantLogins} to "${username}"`,
    // Settings the login gave itself (ALTER ROLE current_user SET ...) go; ours are pinned again.
    ...pinLoginSettings(username, tenant),
  ];
}

/**
 * Ends a login's open sessions and waits (up to 5 s each) until they are gone, so their
 * locks are released before what follows (the owner role holds pg_signal_backend).
 */
export async function terminateSessions(tx: Tx, username: string): Promise<void> {
  await tx.unsafe(`set local role ${ROLES.owner}`);
  await tx`select pg_terminate_backend(pid, 5000) from pg_stat_activity where usename = ${username}`;
  await tx.unsafe('reset role');
}
