/**
 * The advisory locks the platform coordinates with, in one place: each name is hashed
 * to a key by `hashtext` on the server, so a typo here would silently stop two pieces
 * of code from excluding each other. Tenant roles cannot take advisory locks at all
 * (the functions are revoked from PUBLIC, see public-privileges.ts), so no tenant can
 * hold one of these to stall the platform.
 *
 * @example
 * await tx`select pg_advisory_xact_lock(hashtext(${LOCKS.install}))`;
 */
export const LOCKS = {
  /** Extension creation and database-level grants (start-up). */
  install: 'tenantforge:install',
  /** Control-plane migrations. */
  controlPlane: 'tenantforge:migrate:control-plane',
  /** One tenant migration run at a time (session lock, held by the runner's connection). */
  migrationRun: 'tenantforge:migrate:tenants',
  /** The template's version: exclusive to migrate it, shared while cloning from it. */
  template: 'tenantforge:migrate:template',
  /** Role DDL and grants, which race on shared catalog rows ("tuple concurrently updated"). */
  tenantRoles: 'tenantforge:tenant-roles',
  /** One backup scheduler round at a time across instances (the others skip the round). */
  backupSchedule: 'tenantforge:backup-schedule',
  /** One warm-pool refill at a time across instances (the others skip the round), so the pool never overshoots. */
  warmPool: 'tenantforge:warm-pool',
} as const;

/** One provisioning request per idempotency key at a time. */
export const idempotencyLock = (key: string) => `tenantforge:idempotency:${key}`;

/** A statement taking `name`'s transaction-scoped lock, for plans sent as SQL text. */
export const xactLockStatement = (name: string) =>
  `select pg_advisory_xact_lock(hashtext('${name.replaceAll("'", "''")}'))`;

/**
 * Serialises tenant-role DDL and grants (clone plans, logins, isolation fixes): the
 * statement text, because clone plans are sent as SQL text.
 */
export const ROLE_DDL_LOCK = xactLockStatement(LOCKS.tenantRoles);
