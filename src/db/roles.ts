/**
 * The platform's database roles (see the README's isolation model). Names are fixed so
 * that every instance, the validator and the docs agree on them.
 */
export const ROLES = {
  /** NOLOGIN; owns the platform schema, the template and every tenant schema and table. */
  owner: 'tf_owner',
  /** Runs DDL as the owner; give it LOGIN and a password to run the service without a superuser. */
  migrator: 'tf_migrator',
  /** Reads catalogs only. */
  validator: 'tf_validator',
  /** NOLOGIN group of every tenant's direct login: what holds CONNECT on the database for them. */
  tenantLogins: 'tf_tenant_login',
} as const;

/**
 * The service's runtime connections log in as one of these roles, its lanes: each is a
 * member of the roles of 1/RUNTIME_LANES of the tenants (chosen by the first hex digit
 * of the tenant's hashed name, see db/names.ts), never owner, BYPASSRLS or INHERIT.
 * One runtime role for every tenant would make each backend's role-membership cache
 * hold every tenant role; PostgreSQL 15 drops that cache in every backend on any GRANT
 * or REVOKE anywhere and rebuilds it in time quadratic in its size (169 ms at 10,000
 * tenant roles, 5 ms at 1,250). Lanes also keep each tenant on its own few connections,
 * so a backend's catalog caches hold a lane's tenants only.
 */
export const RUNTIME_LANES = 8;

const RUNTIME_ROLE_PREFIX = 'tf_app_';

export const runtimeRole = (lane: number) => `${RUNTIME_ROLE_PREFIX}${lane}`;

/** `runtimeRole(lane)` in SQL, for `lane` (an integer expression). */
export const runtimeRoleSql = (lane: string) => `format('${RUNTIME_ROLE_PREFIX}%s', ${lane})`;

export const RUNTIME_ROLES: readonly string[] = Array.from({ length: RUNTIME_LANES }, (_, lane) => runtimeRole(lane));

/** The single runtime role of earlier releases: install moves its tenant memberships to the lanes and takes its LOGIN. */
export const LEGACY_RUNTIME_ROLE = 'tf_app';

/** The platform's own roles, lanes included. */
export const PLATFORM_ROLES: readonly string[] = [...Object.values(ROLES), ...RUNTIME_ROLES];

/** Schema holding the extensions, so that nothing of theirs lands in `public`. */
export const EXTENSIONS_SCHEMA = 'extensions';

/** The schema new tenants are cloned from. */
export const TEMPLATE_SCHEMA = 'tf_template';

export const REQUIRED_EXTENSIONS = ['timescaledb', 'vector', 'pgcrypto'] as const;
