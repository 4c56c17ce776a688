/**
 * Tenant plans and what each grants. Limits are enforced where the tenant's work runs
 * (statement timeouts, direct-login connection limits, backup schedules and retention).
 */
const HOUR = 3_600_000;

/** `backups`: how often a scheduled backup runs (0 = never) and how many backups are kept. */
export const PLANS = {
  free: { statementTimeoutMs: 2_000, connectionLimit: 2, backups: { intervalMs: 0, keep: 3 } },
  pro: { statementTimeoutMs: 10_000, connectionLimit: 10, backups: { intervalMs: 24 * HOUR, keep: 7 } },
  enterprise: { statementTimeoutMs: 60_000, connectionLimit: 50, backups: { intervalMs: HOUR, keep: 48 } },
} as const;

export type PlanName = keyof typeof PLANS;
export const PLAN_NAMES = Object.keys(PLANS) as [PlanName, ...PlanName[]];
export const DEFAULT_PLAN: PlanName = 'free';
