/**
 * Prometheus text for the latest validator run: one gauge per check (violations found),
 * plus when it ran, how long it took, how many tenants it covered and whether it could
 * run at all. Before the first run there are no samples: absent, not falsely zero.
 *
 * @example
 * const text = renderMetrics(await latestSummary(sql));
 * // tenantforge_isolation_violations{check="rls_forced"} 0
 */
import { MetricsText } from '../http/prometheus.ts';
import { CHECK_NAMES } from './checks/catalog.ts';
import type { ReportSummary } from './report.ts';

export function renderMetrics(latest: ReportSummary | undefined): string {
  const text = new MetricsText();
  const counts = latest?.counts;
  text.gauge(
    'tenantforge_isolation_violations',
    'Isolation violations found by the latest validator run, per check.',
    counts ? CHECK_NAMES.map((check) => [`{check="${check}"}`, counts[check] ?? 0]) : [],
  );
  text.gauge(
    'tenantforge_isolation_last_run_ok',
    'Whether the latest validator run completed (1) or could not run (0).',
    latest && (latest.outcome === 'error' ? 0 : 1),
  );
  text.gauge(
    'tenantforge_isolation_last_run_timestamp_seconds',
    'When the latest validator run finished (Unix time).',
    latest && Date.parse(latest.finishedAt) / 1000,
  );
  text.gauge(
    'tenantforge_isolation_last_run_duration_seconds',
    'How long the latest validator run took.',
    latest && latest.durationMs / 1000,
  );
  text.gauge(
    'tenantforge_isolation_tenants_checked',
    'Tenants the latest validator run covered.',
    latest?.tenantsChecked,
  );
  return text.toString();
}
