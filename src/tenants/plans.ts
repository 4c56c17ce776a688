/**
 * Tenant plans and what each grants. Limits are enforced where the tenant's work runs:
 * statement timeouts and chunk quotas on every API request; connection limit, temp-file
 * limit and idle-transaction bound on the direct login (pinned on its role, and
 * enforced from outside by the login watchdog where a login could lift them); backup
 * schedules and retention by the backup scheduler.
 */
import type { TenantContext } from '../db/with-tenant.ts';

const HOUR = 3_600_000;

/** `backups`: how often a scheduled backup runs (0 = never) and how many backups are kept. */
export const PLANS = {
  free: {
    statementTimeoutMs: 2_000,
    connectionLimit: 2,
    idleInTransactionMs: 10_000,
    tempFileLimitKb: 256 * 1024,
    chunkQuota: 2_000,
    backups: { intervalMs: 0, keep: 3 },
  },
  pro: {
    statementTimeoutMs: 10_000,
    connectionLimit: 10,
    idleInTransactionMs: 30_000,
    tempFileLimitKb: 2 * 1024 * 1024,
    chunkQuota: 20_000,
    backups: { intervalMs: 24 * HOUR, keep: 7 },
  },
  enterprise: {
    statementTimeoutMs: 60_000,
    connectionLimit: 50,
    idleInTransactionMs: 60_000,
    tempFileLimitKb: 16 * 1024 * 1024,
    chunkQuota: 100_000,
    backups: { intervalMs: HOUR, keep: 48 },
  },
} as const;

export type PlanName = keyof typeof PLANS;
export const PLAN_NAMES = Object.keys(PLANS) as [PlanName, ...PlanName[]];
export const DEFAULT_PLAN: PlanName = 'free';

/** What the data plane needs of an active tenant: where its data is and its plan's limits. */
export function tenantContext(row: {
  id: string;
  schema_name: string;
  role_name: string;
  plan: PlanName;
}): TenantContext {
  const plan = PLANS[row.plan];
  return {
    id: row.id,
    schema: row.schema_name,
    role: row.role_name,
    statementTimeoutMs: plan.statementTimeoutMs,
    chunkQuota: plan.chunkQuota,
  };
}
