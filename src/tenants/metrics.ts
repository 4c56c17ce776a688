/**
 * Prometheus metrics for tenant creation and the warm pool, appended to `GET /metrics`.
 * The pool's contents come from the control plane (the same on every instance); the
 * `_total` counters are this instance's since it started. A pool with nothing claimable
 * sends every create down the cold path (a clone paying `create_hypertable`, which grows
 * with the catalog): alert on `tenantforge_warm_pool_tenants{state="claimable"}` at 0
 * while the target is above it.
 *
 * @example
 * renderTenantMetrics({ target: 10, pooled: 10, claimable: 10, created, refill: job.stats });
 * // tenantforge_warm_pool_tenants{state="claimable"} 10 ...
 */
import { MetricsText } from '../http/prometheus.ts';

export type TenantMetrics = {
  /** TENANTFORGE_WARM_POOL: how many pooled tenants the refill keeps (0: no pool). */
  target: number;
  pooled: number;
  /** Pooled at the template's current version: only these can be claimed. */
  claimable: number;
  created: { warmPool: number; cloned: number };
  /** This instance's refill rounds; absent when it runs no refill. */
  refill?: { made: number; busy: number };
};

export function renderTenantMetrics(m: TenantMetrics): string {
  const text = new MetricsText()
    .gauge(
      'tenantforge_warm_pool_target_tenants',
      'How many pooled tenants the refill keeps ready (0: no pool).',
      m.target,
    )
    .gauge(
      'tenantforge_warm_pool_tenants',
      'Pooled tenants: claimable (at the current template version) or behind (waiting for the tenant migration runner).',
      [
        ['{state="claimable"}', m.claimable],
        ['{state="behind"}', m.pooled - m.claimable],
      ],
    )
    .counter(
      'tenantforge_tenants_created_total',
      'Tenants this instance created: claimed from the warm pool, or cloned (the cold path, also every restore).',
      [
        ['{path="warm_pool"}', m.created.warmPool],
        ['{path="clone"}', m.created.cloned],
      ],
    );
  if (m.refill)
    text.counter(
      'tenantforge_warm_pool_refill_rounds_total',
      "This instance's refill rounds that made a pooled tenant, and those skipped because requests were running.",
      [
        ['{outcome="made"}', m.refill.made],
        ['{outcome="skipped_busy"}', m.refill.busy],
      ],
    );
  return text.toString();
}
