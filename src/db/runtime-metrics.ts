/**
 * Prometheus metrics of this instance's runtime connections (db/runtime-lanes.ts) and
 * per-tenant caps (db/tenant-gate.ts): whether the data plane is short of connections,
 * and whether one tenant is being held back or refused.
 *
 * @example
 * renderRuntimeMetrics(platform.app); // tenantforge_runtime_connections{state="busy"} 2 ...
 */
import { MetricsText } from '../http/prometheus.ts';
import type { WarmingStats } from './lane-warming.ts';
import type { RuntimeLanes } from './runtime-lanes.ts';
import { gateOf } from './with-tenant.ts';

export function renderRuntimeMetrics(lanes: RuntimeLanes, warming?: WarmingStats): string {
  const sum = { seats: 0, busy: 0, waiting: 0, awayFromHome: 0, renewed: 0, gateWaiting: 0, refused: 0 };
  for (const lane of lanes.lanes) {
    const seats = lane.stats();
    const gate = gateOf(lane)?.stats();
    sum.seats += seats.seats;
    sum.busy += seats.busy;
    sum.waiting += seats.waiting;
    sum.awayFromHome += seats.awayFromHome;
    sum.renewed += seats.renewed;
    sum.gateWaiting += gate?.waiting ?? 0;
    sum.refused += gate?.refused ?? 0;
  }
  const text = new MetricsText()
    .gauge('tenantforge_runtime_connections', "This instance's runtime connections for tenant data, by state.", [
      ['{state="busy"}', sum.busy],
      ['{state="idle"}', sum.seats - sum.busy],
    ])
    .gauge(
      'tenantforge_runtime_waiting_requests',
      'Requests waiting for a runtime connection (all of their lane busy).',
      sum.waiting,
    )
    .counter(
      'tenantforge_runtime_away_from_home_total',
      "Requests served on a connection other than their tenant's home one, whose backend then caches that tenant's tables too.",
      sum.awayFromHome,
    )
    .counter(
      'tenantforge_runtime_connections_renewed_total',
      'Runtime connections replaced after serving TENANTFORGE_POOL_MAX_TENANTS different tenants or after TENANTFORGE_POOL_MAX_LIFETIME (their backends exit and free their caches).',
      sum.renewed,
    )
    .gauge(
      'tenantforge_tenant_gate_waiting_requests',
      'Requests waiting because their tenant already holds as many connections as one tenant may.',
      sum.gateWaiting,
    )
    .counter(
      'tenantforge_tenant_gate_refused_total',
      "Requests refused with 429 tenant_concurrency_exceeded: their tenant's queue was full.",
      sum.refused,
    );
  if (warming) {
    text
      .gauge(
        'tenantforge_runtime_warming_tenants',
        'Tenants queued or being warmed: their tables opened on their home runtime connection ahead of requests.',
        warming.pending,
      )
      .counter(
        'tenantforge_runtime_warmed_tenants_total',
        'Tenants warmed on their home runtime connection, by outcome (skipped: the connection may serve no more tenants; failed: the requests will open the tables themselves).',
        [
          ['{outcome="warmed"}', warming.warmed],
          ['{outcome="skipped"}', warming.skipped],
          ['{outcome="failed"}', warming.failed],
        ],
      );
  }
  return text.toString();
}
