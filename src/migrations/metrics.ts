/**
 * Prometheus gauges for tenant migrations, appended to `GET /metrics`: tenants behind
 * the template, and the latest run's progress and outcome. Before the first run there
 * are no run samples: absent, not falsely zero.
 *
 * @example
 * const text = renderMigrationMetrics(await migrationStatus(sql));
 * // tenantforge_migration_tenants_behind 0
 */
import { MetricsText } from '../http/prometheus.ts';
import type { MigrationStatus } from './runs.ts';

export function renderMigrationMetrics(status: MigrationStatus): string {
  const text = new MetricsText();
  const run = status.run;
  text.gauge(
    'tenantforge_migration_tenants_behind',
    'Tenants whose schema is behind the template version.',
    status.tenantsBehind,
  );
  text.gauge(
    'tenantforge_migration_run_running',
    'Whether a tenant migration run is in progress (1) or not (0).',
    run ? Number(run.status === 'running') : undefined,
  );
  text.gauge('tenantforge_migration_last_run_tenants', 'Tenants the latest run set out to migrate.', run?.total);
  text.gauge('tenantforge_migration_last_run_migrated', 'Tenants the latest run migrated.', run?.migrated);
  text.gauge(
    'tenantforge_migration_last_run_failed',
    'Tenants the latest run could not migrate (they stay on their version).',
    run?.failed,
  );
  text.gauge(
    'tenantforge_migration_last_run_timestamp_seconds',
    'When the latest run started (Unix time).',
    run ? Date.parse(run.startedAt) / 1000 : undefined,
  );
  return text.toString();
}
