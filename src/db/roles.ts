/**
 * The platform's database roles (see the README's isolation model). Names are fixed so
 * that every instance, the validator and the docs agree on them.
 */
export const ROLES = {
  /** NOLOGIN; owns the platform schema, the template and every tenant schema and table. */
  owner: 'tf_owner',
  /** Runs DDL as the owner; give it LOGIN and a password to run the service without a superuser. */
  migrator: 'tf_migrator',
  /** The service's pooled runtime connections; member of each tenant role, never owner or BYPASSRLS. */
  app: 'tf_app',
  /** Reads catalogs only. */
  validator: 'tf_validator',
  /** NOLOGIN group of every tenant's direct login: what holds CONNECT on the database for them. */
  tenantLogins: 'tf_tenant_login',
} as const;

/** Schema holding the extensions, so that nothing of theirs lands in `public`. */
export const EXTENSIONS_SCHEMA = 'extensions';

/** The schema new tenants are cloned from. */
export const TEMPLATE_SCHEMA = 'tf_template';

export const REQUIRED_EXTENSIONS = ['timescaledb', 'vector', 'pgcrypto'] as const;
