/**
 * The control plane (schema `platform`), managed by drizzle-kit migrations in `drizzle/`.
 * Tenant tables are not here: they come from the SQL template in `sql/`.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

export const platform = pgSchema('platform');

/**
 * `pooled`: a warm-pool tenant, fully provisioned ahead of demand but not yet handed to
 * anyone (no slug or name, no runtime-role membership); `POST /v1/tenants` claims one.
 */
export const TENANT_STATUSES = ['active', 'suspended', 'deleted', 'purged', 'pooled'] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

export const tenants = platform.table(
  'tenants',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Null only while pooled (tenants_pooled_check). */
    slug: text('slug'),
    name: text('name'),
    plan: text('plan').notNull(),
    status: text('status').$type<TenantStatus>().notNull().default('active'),
    schemaName: text('schema_name').notNull(),
    roleName: text('role_name').notNull(),
    templateVersion: text('template_version').notNull(),
    provisioningMs: doublePrecision('provisioning_ms'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
    purgeAfter: timestamp('purge_after', { withTimezone: true }),
    /** When the tenant last sent an API request, to within a quarter of an hour (tenants/activity.ts). */
    lastRequestAt: timestamp('last_request_at', { withTimezone: true }),
  },
  (t) => [
    // Slugs stay taken after a soft delete, compared case-insensitively.
    uniqueIndex('tenants_slug_lower_key').on(sql`lower(${t.slug})`),
    uniqueIndex('tenants_schema_name_key').on(t.schemaName),
    uniqueIndex('tenants_role_name_key').on(t.roleName),
    index('tenants_purge_after_idx').on(t.purgeAfter).where(sql`${t.status} = 'deleted'`),
    // "Which tenants are behind" is one range scan on this index (src/migrations/behind.ts).
    index('tenants_template_version_idx').on(t.templateVersion).where(sql`${t.status} <> 'purged'`),
    // The warm pool's claim looks here: the oldest pooled tenant at the template's version.
    index('tenants_pool_idx').on(t.templateVersion, t.createdAt).where(sql`${t.status} = 'pooled'`),
    check('tenants_status_check', sql`${t.status} in ('active', 'suspended', 'deleted', 'purged', 'pooled')`),
    // A pooled tenant has no slug or name yet; every other tenant has both.
    check(
      'tenants_pooled_check',
      sql`(${t.status} = 'pooled') = (${t.slug} is null and ${t.name} is null) and (${t.slug} is null) = (${t.name} is null)`,
    ),
    check(
      'tenants_schema_name_check',
      sql`${t.schemaName} ~ '^tenant_[0-9a-f]+$' and octet_length(${t.schemaName}) <= 63`,
    ),
  ],
);

export const auditLog = platform.table(
  'audit_log',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    tenantId: uuid('tenant_id'),
    outcome: text('outcome').$type<'succeeded' | 'failed'>().notNull(),
    durationMs: doublePrecision('duration_ms'),
    requestId: text('request_id'),
    detail: jsonb('detail').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    index('audit_log_tenant_idx').on(t.tenantId, t.occurredAt),
    check('audit_log_outcome_check', sql`${t.outcome} in ('succeeded', 'failed')`),
  ],
);

export const idempotencyKeys = platform.table('idempotency_keys', {
  key: text('key').primaryKey(),
  requestHash: text('request_hash').notNull(),
  tenantId: uuid('tenant_id')
    .notNull()
    .references(() => tenants.id),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Tenant migrations (files in `sql/`) applied to the template schema, each with the
 * tenant plan compiled from it (what every existing tenant runs to catch up).
 */
export const templateMigrations = platform.table('template_migrations', {
  name: text('name').primaryKey(),
  checksum: text('checksum').notNull(),
  appliedAt: timestamp('applied_at', { withTimezone: true }).notNull().defaultNow(),
  /** Null for files applied before tenant plans existed (no tenant can be behind them). */
  tenantPlan: jsonb('tenant_plan').$type<{ steps: { name: string; sql: string }[]; data: string | null }>(),
});

/** The template's structure at each version, for the drift check (tenants at that version must match). */
export const templateVersions = platform.table('template_versions', {
  version: text('version').primaryKey(),
  structure: jsonb('structure').$type<string[]>().notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const MIGRATION_RUN_STATUSES = ['running', 'succeeded', 'failed', 'interrupted'] as const;
export type MigrationRunStatus = (typeof MIGRATION_RUN_STATUSES)[number];

/** Tenant migration runs (`tenantforge migrate`): one row per run, updated as it goes. */
export const migrationRuns = platform.table(
  'migration_runs',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    status: text('status').$type<MigrationRunStatus>().notNull().default('running'),
    targetVersion: text('target_version').notNull(),
    actor: text('actor').notNull(),
    total: integer('total').notNull().default(0),
    migrated: integer('migrated').notNull().default(0),
    failed: integer('failed').notNull().default(0),
  },
  (t) => [
    index('migration_runs_started_idx').on(t.startedAt),
    check('migration_runs_status_check', sql`${t.status} in ('running', 'succeeded', 'failed', 'interrupted')`),
  ],
);

/** Tenants a run could not migrate, with the error; they stay on their old version. */
export const migrationFailures = platform.table(
  'migration_failures',
  {
    runId: bigint('run_id', { mode: 'number' })
      .notNull()
      .references(() => migrationRuns.id),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id),
    migration: text('migration'),
    code: text('code'),
    error: text('error').notNull(),
    attempts: integer('attempts').notNull(),
    failedAt: timestamp('failed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.tenantId] })],
);

/** Per-tenant migration ledger: which template migrations each tenant schema has. */
export const tenantMigrations = platform.table(
  'tenant_migrations',
  {
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id),
    name: text('name').notNull(),
    checksum: text('checksum').notNull(),
    appliedAt: timestamp('applied_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.name] })],
);

/** Tenant API keys: only a SHA-256 of the key is kept; the key is shown once. */
export const apiKeys = platform.table(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id),
    name: text('name'),
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('api_keys_key_hash_key').on(t.keyHash), index('api_keys_tenant_idx').on(t.tenantId, t.createdAt)],
);

/**
 * One row, bumped in the same transaction as every change to what a tenant's API key
 * answers (suspension, deletion, purge, a plan change, a key revoked): each instance
 * reads it a few times a second to know which cached key answers still hold
 * (tenants/access-watch.ts).
 */
export const accessVersion = platform.table(
  'access_version',
  {
    id: boolean('id').primaryKey().default(true),
    version: bigint('version', { mode: 'number' }).notNull().default(0),
  },
  (t) => [check('access_version_one_row', sql`${t.id}`)],
);

/** Direct database logins (one per tenant), for the tenant's own tools. */
export const tenantLogins = platform.table('tenant_logins', {
  tenantId: uuid('tenant_id')
    .primaryKey()
    .references(() => tenants.id),
  roleName: text('role_name').notNull().unique(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  rotatedAt: timestamp('rotated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Isolation validator runs: the report of each, kept for the admin API and trends. */
export const isolationReports = platform.table(
  'isolation_reports',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    finishedAt: timestamp('finished_at', { withTimezone: true }).notNull().defaultNow(),
    outcome: text('outcome').$type<'clean' | 'violations' | 'error'>().notNull(),
    tenantsChecked: bigint('tenants_checked', { mode: 'number' }).notNull(),
    violations: bigint('violations', { mode: 'number' }).notNull(),
    report: jsonb('report').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [
    index('isolation_reports_finished_idx').on(t.finishedAt),
    check('isolation_reports_outcome_check', sql`${t.outcome} in ('clean', 'violations', 'error')`),
  ],
);

export const BACKUP_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'expired'] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

/**
 * Tenant backups, each row also its own job: queued rows are claimed with
 * `FOR UPDATE SKIP LOCKED` and run under a lease that the running instance renews, so
 * several instances never run one backup at once and a crashed instance's backup is
 * picked up again once its lease runs out.
 */
export const backups = platform.table(
  'backups',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id),
    status: text('status').$type<BackupStatus>().notNull().default('queued'),
    trigger: text('trigger').$type<'manual' | 'scheduled'>().notNull().default('manual'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(3),
    runAfter: timestamp('run_after', { withTimezone: true }).notNull().defaultNow(),
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    worker: text('worker'),
    error: text('error'),
    templateVersion: text('template_version'),
    sizeBytes: bigint('size_bytes', { mode: 'number' }),
    rawBytes: bigint('raw_bytes', { mode: 'number' }),
    tables: jsonb('tables').$type<Record<string, number>>(),
    encryption: text('encryption'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    durationMs: doublePrecision('duration_ms'),
    expiredAt: timestamp('expired_at', { withTimezone: true }),
  },
  (t) => [
    index('backups_tenant_created_idx').on(t.tenantId, t.createdAt),
    index('backups_due_idx').on(t.runAfter).where(sql`${t.status} in ('queued', 'running')`),
    check('backups_status_check', sql`${t.status} in ('queued', 'running', 'succeeded', 'failed', 'expired')`),
    check('backups_trigger_check', sql`${t.trigger} in ('manual', 'scheduled')`),
  ],
);
