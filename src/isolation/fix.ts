/**
 * Safe remediations: applies the fix of each violation marked `autofix` (revoking
 * grants and memberships, switching RLS on, restoring canonical policies and owners).
 * Each runs in its own transaction, so one failure does not stop the others; what
 * could lose data or break code (dropping orphans, moving chunks, pinning a function's
 * search_path) is left to a person.
 *
 * @example
 * const results = await applyFixes(platform.control, report.violations);
 */
import type { Sql } from '../db/connect.ts';
import { withRetry } from '../db/retry.ts';
import { ROLE_DDL_LOCK } from '../db/locks.ts';
import type { CheckName, Violation } from './checks/catalog.ts';

export type FixResult = {
  check: CheckName;
  tenantId: string | null;
  object: string;
  sql: string;
  applied: boolean;
  error?: string;
};

export async function applyFixes(sql: Sql, violations: Violation[]): Promise<FixResult[]> {
  const results: FixResult[] = [];
  const done = new Set<string>();
  for (const v of violations) {
    if (!v.autofix || done.has(v.fix)) continue;
    done.add(v.fix);
    const result: FixResult = { check: v.check, tenantId: v.tenantId, object: v.object, sql: v.fix, applied: false };
    try {
      // Grants and role changes write shared catalog rows: serialise with provisioning.
      await withRetry(() => sql.begin((tx) => tx.unsafe(`${ROLE_DDL_LOCK};\n${v.fix}`)));
      result.applied = true;
    } catch (err) {
      result.error = (err as Error).message;
    }
    results.push(result);
  }
  return results;
}
