/**
 * Environment -> typed configuration. The only module that reads `process.env`.
 *
 * @example
 * const config = loadConfig(process.env); // throws ConfigError naming the bad variable
 */
import { z } from 'zod';

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

const boolean = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const duration = (fallback: string) =>
  z
    .string()
    .regex(/^\d+(ms|s|m|h|d)$/, 'must be a whole number with a unit: ms, s, m, h or d (e.g. 30s)')
    .default(fallback)
    .transform(parseDuration);

/** A duration, or `off`/`0` for never (0 ms). */
const intervalOrOff = (fallback: string) =>
  z
    .string()
    .regex(/^(off|0|\d+(ms|s|m|h|d))$/, 'must be off (or 0) or a whole number with a unit: ms, s, m, h or d (e.g. 1h)')
    .default(fallback)
    .transform((v) => (v === 'off' || v === '0' ? 0 : parseDuration(v)));

/** Every setting, its environment variable, default and meaning; the README table mirrors this. */
const schema = z.object({
  DATABASE_URL: postgresUrl.optional(),
  APP_DATABASE_URL: postgresUrl.optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TENANTFORGE_DATA_DIR: z.string().min(1).default('.data'),
  TENANTFORGE_LOCAL_PG_PORT: z.coerce.number().int().min(1024).max(65535).default(54329),
  TENANTFORGE_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  TENANTFORGE_SCHEMA_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  TENANTFORGE_APP_PASSWORD: z.string().min(16, 'must be at least 16 characters').optional(),
  TENANTFORGE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(10),
  TENANTFORGE_LANE_CONNECTIONS: z.coerce.number().int().min(1).max(100).default(3),
  TENANTFORGE_POOL_MAX_LIFETIME: intervalOrOff('30m'),
  TENANTFORGE_POOL_MAX_TENANTS: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
  TENANTFORGE_WARM_CONNECTIONS: boolean.default(true),
  TENANTFORGE_WARM_WITHIN: intervalOrOff('7d'),
  TENANTFORGE_STATEMENT_TIMEOUT: duration('5s'),
  TENANTFORGE_DELETED_RETENTION: duration('30d'),
  TENANTFORGE_PURGE_INTERVAL: duration('1h'),
  TENANTFORGE_SHUTDOWN_TIMEOUT: duration('10s'),
  TENANTFORGE_VALIDATOR_INTERVAL: intervalOrOff('1h'),
  TENANTFORGE_LOCK_TIMEOUT: duration('1s'),
  TENANTFORGE_TENANT_CONCURRENCY: z.coerce.number().int().min(1).max(500).optional(),
  TENANTFORGE_TENANT_QUEUE: z.coerce.number().int().min(0).max(100_000).default(200),
  TENANTFORGE_WATCHDOG_INTERVAL: intervalOrOff('1s'),
  TENANTFORGE_EARLIEST_TIME: z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 timestamp (e.g. 1970-01-01T00:00:00Z)' })
    .default('1970-01-01T00:00:00Z'),
  TENANTFORGE_MAX_AHEAD: duration('1d'),
  TENANTFORGE_MAX_CHUNKS_PER_REQUEST: z.coerce.number().int().min(1).max(10_000).default(64),
  TENANTFORGE_DEBUG_ERRORS: boolean.default(false),
  TENANTFORGE_SQL_DIR: z.string().min(1).optional(),
  TENANTFORGE_MIGRATE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  TENANTFORGE_MIGRATE_LOCK_TIMEOUT: duration('2s'),
  TENANTFORGE_MIGRATE_RETRIES: z.coerce.number().int().min(0).max(20).default(3),
  TENANTFORGE_WARM_POOL: z.coerce.number().int().min(0).max(1_000).default(10),
  // Backups: the AWS SDK's own variables, plus where in the store and how.
  TENANTFORGE_BACKUP_URL: z
    .string()
    .regex(
      /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[\x21-\x7e]*)?$/,
      'must be s3://<bucket>[/<prefix>] (bucket: 3-63 lowercase letters, digits, dots, hyphens)',
    )
    .optional(),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  AWS_ENDPOINT_URL_S3: z
    .string()
    .regex(/^https?:\/\/[^/\s]+\/?$/, 'must be a URL such as http://127.0.0.1:9000')
    .optional(),
  TENANTFORGE_BACKUP_PATH_STYLE: boolean.optional(),
  TENANTFORGE_BACKUP_SSE: z.enum(['AES256', 'aws:kms', 'off']).default('AES256'),
  TENANTFORGE_BACKUP_SCHEDULE_INTERVAL: intervalOrOff('1m'),
  TENANTFORGE_BACKUP_WORKERS: z.coerce.number().int().min(0).max(16).default(1),
});

export type Config = {
  /** Privileged connection (superuser, or the migrator role); absent = embedded local cluster. */
  databaseUrl: string | undefined;
  /** Where the runtime lanes connect (each as its own lane role); absent = databaseUrl. */
  appDatabaseUrl: string | undefined;
  port: number;
  host: string;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  dataDir: string;
  localPgPort: number;
  adminToken: string | undefined;
  schemaSecret: string | undefined;
  appPassword: string | undefined;
  /** Connections of the control pool. */
  poolMax: number;
  /** Runtime connections per lane (db/roles.ts RUNTIME_LANES lanes). */
  laneConnections: number;
  /** A pooled connection is replaced after this (plus up to half again, per connection); 0 never. */
  poolMaxLifetimeMs: number;
  /** A runtime connection is replaced after serving this many different tenants; 0 never. */
  poolMaxTenants: number;
  /** Open tenants' tables on their home runtime connections ahead of requests (db/lane-warming.ts). */
  warmConnections: boolean;
  /** At start, warm only the tenants created or that sent a request within this; 0 = every active tenant. */
  warmWithinMs: number;
  statementTimeoutMs: number;
  deletedRetentionMs: number;
  purgeIntervalMs: number;
  shutdownTimeoutMs: number;
  /** How often the service runs the isolation validator; 0 = never. */
  validatorIntervalMs: number;
  /** How long a tenant request waits for a lock before it fails (503 lock_timeout). */
  lockTimeoutMs: number;
  /** Runtime connections one tenant may hold at once; its further requests queue. */
  tenantConcurrency: number;
  /** Requests one tenant may have queued; beyond it, 429. */
  tenantQueue: number;
  /** How often the login watchdog looks for statements and idle transactions past their plan; 0 = never. */
  watchdogIntervalMs: number;
  /** Time-series rows (bars, fills) must fall in [earliestTime, now + maxAheadMs]. */
  earliestTime: Date;
  maxAheadMs: number;
  /** Distinct hypertable chunks one request may touch (each chunk costs locks and catalog rows). */
  maxChunksPerRequest: number;
  debugErrors: boolean;
  /** Folder of the tenant migrations (the template files); absent = the project's `sql/`. */
  sqlDir: string | undefined;
  /** Tenants `migrate` works on at once (each on its own connection). */
  migrateConcurrency: number;
  /** lock_timeout of each tenant's migration transaction. */
  migrateLockTimeoutMs: number;
  /** Retries (with backoff) of a tenant whose migration hit a lock timeout or deadlock. */
  migrateRetries: number;
  /** Pre-provisioned tenants the service keeps ready for `POST /v1/tenants` to claim; 0 = no warm pool. */
  warmPool: number;
  backup: BackupConfig;
};

/** Where and how tenant backups are stored (an S3-compatible object store). */
export type BackupConfig = {
  /** Absent: backups are not configured (the API answers 503 backups_not_configured). */
  bucket: string | undefined;
  /** Key prefix inside the bucket, without leading or trailing slash ('' for none). */
  prefix: string;
  region: string;
  /** Absent: the SDK's default credential chain. */
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  /** Absent: AWS itself. Set for MinIO and other S3-compatible stores. */
  endpoint: string | undefined;
  /** Path-style URLs (`host/bucket/key`); defaults to on when an endpoint is set. */
  forcePathStyle: boolean;
  /** Server-side encryption asked for on every object; 'off' for stores that refuse the header. */
  sse: 'AES256' | 'aws:kms' | 'off';
  /** How often the scheduler looks for tenants due a scheduled backup, and for expired ones; 0 = never. */
  scheduleIntervalMs: number;
  /** Backups one instance runs at once; 0 = this instance runs none (another one does). */
  workers: number;
};

/** Every setting's environment variable. */
export const SETTING_NAMES: readonly string[] = Object.keys(schema.shape);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates the environment; every problem is reported, each naming its variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      return `${name}=${JSON.stringify(redactValue(name, present[name]))}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL,
    appDatabaseUrl: e.APP_DATABASE_URL,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    dataDir: e.TENANTFORGE_DATA_DIR,
    localPgPort: e.TENANTFORGE_LOCAL_PG_PORT,
    adminToken: e.TENANTFORGE_ADMIN_TOKEN,
    schemaSecret: e.TENANTFORGE_SCHEMA_SECRET,
    appPassword: e.TENANTFORGE_APP_PASSWORD,
    poolMax: e.TENANTFORGE_POOL_MAX,
    poolMaxLifetimeMs: e.TENANTFORGE_POOL_MAX_LIFETIME,
    poolMaxTenants: e.TENANTFORGE_POOL_MAX_TENANTS,
    warmConnections: e.TENANTFORGE_WARM_CONNECTIONS,
    warmWithinMs: e.TENANTFORGE_WARM_WITHIN,
    statementTimeoutMs: e.TENANTFORGE_STATEMENT_TIMEOUT,
    deletedRetentionMs: e.TENANTFORGE_DELETED_RETENTION,
    purgeIntervalMs: e.TENANTFORGE_PURGE_INTERVAL,
    shutdownTimeoutMs: e.TENANTFORGE_SHUTDOWN_TIMEOUT,
    validatorIntervalMs: e.TENANTFORGE_VALIDATOR_INTERVAL,
    lockTimeoutMs: e.TENANTFORGE_LOCK_TIMEOUT,
    laneConnections: e.TENANTFORGE_LANE_CONNECTIONS,
    // All of its lane but one connection by default: one tenant alone gets most of it,
    // and the other tenants of its lane always have a connection.
    tenantConcurrency: Math.min(
      e.TENANTFORGE_TENANT_CONCURRENCY ?? Math.max(1, e.TENANTFORGE_LANE_CONNECTIONS - 1),
      e.TENANTFORGE_LANE_CONNECTIONS,
    ),
    tenantQueue: e.TENANTFORGE_TENANT_QUEUE,
    watchdogIntervalMs: e.TENANTFORGE_WATCHDOG_INTERVAL,
    earliestTime: new Date(e.TENANTFORGE_EARLIEST_TIME),
    maxAheadMs: e.TENANTFORGE_MAX_AHEAD,
    maxChunksPerRequest: e.TENANTFORGE_MAX_CHUNKS_PER_REQUEST,
    debugErrors: e.TENANTFORGE_DEBUG_ERRORS,
    sqlDir: e.TENANTFORGE_SQL_DIR,
    migrateConcurrency: e.TENANTFORGE_MIGRATE_CONCURRENCY,
    migrateLockTimeoutMs: e.TENANTFORGE_MIGRATE_LOCK_TIMEOUT,
    migrateRetries: e.TENANTFORGE_MIGRATE_RETRIES,
    warmPool: e.TENANTFORGE_WARM_POOL,
    backup: backupConfig(e),
  };
}

function backupConfig(e: z.infer<typeof schema>): BackupConfig {
  const match = e.TENANTFORGE_BACKUP_URL ? /^s3:\/\/([^/]+)\/?(.*)$/.exec(e.TENANTFORGE_BACKUP_URL) : null;
  if (e.AWS_ACCESS_KEY_ID && !e.AWS_SECRET_ACCESS_KEY)
    throw new ConfigError('invalid configuration: AWS_SECRET_ACCESS_KEY must be set with AWS_ACCESS_KEY_ID');
  return {
    bucket: match?.[1],
    prefix: (match?.[2] ?? '').replace(/^\/+|\/+$/g, ''),
    region: e.AWS_REGION,
    accessKeyId: e.AWS_ACCESS_KEY_ID,
    secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
    endpoint: e.AWS_ENDPOINT_URL_S3,
    forcePathStyle: e.TENANTFORGE_BACKUP_PATH_STYLE ?? e.AWS_ENDPOINT_URL_S3 !== undefined,
    sse: e.TENANTFORGE_BACKUP_SSE,
    scheduleIntervalMs: e.TENANTFORGE_BACKUP_SCHEDULE_INTERVAL,
    workers: e.TENANTFORGE_BACKUP_WORKERS,
  };
}

function redactValue(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (/TOKEN|SECRET|PASSWORD|SECRET_ACCESS_KEY/.test(name)) return '<redacted>';
  if (/URL/.test(name)) return value.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:<redacted>@');
  return value;
}

/** `"30s"` -> 30000. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new ConfigError(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms'];
  return Number(match[1]) * unit;
}
