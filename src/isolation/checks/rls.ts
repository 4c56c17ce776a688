/**
 * Row level security on every tenant table: enabled, and forced so that it binds the
 * table's owner too. (Chunks are covered by the chunk checks: TimescaleDB refuses RLS
 * on them.)
 *
 * @example
 * const violations = await rlsChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { tenantTables, type CheckContext } from './context.ts';

export async function rlsChecks(ctx: CheckContext): Promise<Violation[]> {
  return ctx.tx<Violation[]>`
    with tt as materialized (${tenantTables(ctx)})
    select 'rls_enabled' as "check", tt.id as "tenantId", tt.slug as "tenantSlug", tt.schema_name || '.' || tt.relname as object,
           format('table %s.%s has row level security disabled: every role with a grant on it sees all its rows', tt.schema_name, tt.relname) as rule,
           format('alter table %I.%I enable row level security', tt.schema_name, tt.relname) as fix,
           true as autofix
    from tt where not tt.relrowsecurity
    union all
    select 'rls_forced', tt.id, tt.slug, tt.schema_name || '.' || tt.relname,
           format('table %s.%s does not force row level security: its owner bypasses the policies', tt.schema_name, tt.relname),
           format('alter table %I.%I force row level security', tt.schema_name, tt.relname),
           true
    from tt where not tt.relforcerowsecurity`;
}
