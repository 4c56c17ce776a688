/**
 * Tenant plans and what each grants. Limits are enforced where the tenant's work runs
 * (statement timeouts, direct-login connection limits).
 */
export const PLANS = {
  free: { statementTimeoutMs: 2_000, connectionLimit: 2 },
  pro: { statementTimeoutMs: 10_000, connectionLimit: 10 },
  enterprise: { statementTimeoutMs: 60_000, connectionLimit: 50 },
} as const;

export type PlanName = keyof typeof PLANS;
export const PLAN_NAMES = Object.keys(PLANS) as [PlanName, ...PlanName[]];
export const DEFAULT_PLAN: PlanName = 'free';
