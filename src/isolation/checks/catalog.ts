/**
 * Every isolation check the validator runs, by name: the name is the `check` of each
 * violation and the label of its metric. Descriptions are what each one guarantees.
 *
 * @example
 * for (const [name, what] of Object.entries(CHECKS)) console.log(`${name}: ${what}`);
 */
export const CHECKS = {
  registry_schema: 'every registered tenant has its schema',
  registry_role: 'every registered tenant has its role, named after its schema',
  orphan_schema: 'no tenant_* schema exists without a registered tenant',
  orphan_role: 'no tenant role with privileges in this database exists without a registered tenant',
  role_attributes: 'tenant roles are not SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION',
  role_membership:
    "no tenant role can act as another tenant's role or a privileged role; no role bridges two tenants; suspended, deleted and pooled tenants are out of the runtime lanes' reach, and each lane holds its own lane's tenants only",
  ownership: 'tenant schemas and everything in them are owned by the owner role, never the tenant role',
  rls_enabled: 'every tenant table has row level security enabled',
  rls_forced: 'every tenant table has row level security forced (binding its owner too)',
  policy_missing: 'every tenant table has a policy',
  policy_roles: "policies apply to the tenant's own role only, never PUBLIC",
  policy_always_true: 'no permissive policy is always true',
  policy_with_check: 'policies for writes have a WITH CHECK',
  policy_canonical: 'policies are keyed on the tenant setting in the canonical form',
  schema_grants: "only the tenant's role may use its schema (USAGE only)",
  table_grants:
    "tables, views, sequences and columns are granted only to the tenant's role, within the template's privileges",
  function_grants:
    "only the tenant's role may execute functions in its schema (nothing to PUBLIC, not even by default)",
  type_grants: "only the tenant's role may use types in its schema (nothing to PUBLIC, not even by default)",
  foreign_grants:
    'tenant roles hold privileges in their own schema only: not on the control plane, other schemas or the database',
  default_privileges: "default privileges grant nothing beyond the tenant's role",
  tenant_default_privileges:
    'tenant roles and logins set no default privileges outside their schema, and none elsewhere names a tenant role',
  role_settings:
    'tenant logins carry exactly their pinned settings (statement timeout, temp-file limit, search_path, ...), tenant roles none',
  routine_privileges:
    'PUBLIC may execute no extension routine outside the allowlist, and no risky pg_catalog routine (advisory locks, large objects, WAL messages)',
  security_definer: 'SECURITY DEFINER functions pin a safe search_path',
  view_security_invoker: "views run with the caller's rights (security_invoker); no materialized views",
  chunk_grants: 'no chunk grants more than its hypertable',
  chunk_schema: "chunks live in their tenant's schema, not in a schema every role can use",
  chunk_rls_bypass: "no role but the tenant's own can read a hypertable's chunks directly, where RLS does not apply",
  schema_drift:
    "each tenant's columns, constraints, indexes, triggers and hypertables are the template's at the tenant's version (policies: see the policy checks)",
  extension_schema: 'no extension is installed in public',
  runtime_role:
    'each runtime lane role is NOINHERIT, owns nothing, is not superuser, BYPASSRLS or administrative, and reaches no privileged role',
} as const;

export type CheckName = keyof typeof CHECKS;

export const CHECK_NAMES = Object.keys(CHECKS) as CheckName[];

/** One broken rule on one object. `tenantId` is null for platform-wide rules. */
export type Violation = {
  check: CheckName;
  tenantId: string | null;
  tenantSlug: string | null;
  object: string;
  rule: string;
  /** SQL that repairs it (or, when no SQL can, a comment saying what to do). */
  fix: string;
  /** Whether `--fix` applies it: only narrowing, data-preserving repairs are automatic. */
  autofix: boolean;
};
