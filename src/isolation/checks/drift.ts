/**
 * Schema drift: each tenant's structure (columns, constraints, indexes, triggers,
 * hypertables; policies have their own checks) must be the template's at the tenant's recorded version, as
 * snapshotted when that version was applied (platform.template_versions). A column
 * dropped or an index added by hand in one tenant shows up here, named, and nowhere
 * else. Tenants at a version with no snapshot (applied before snapshots existed) are
 * not judged.
 *
 * Deparsing every tenant's structure is most of a whole run's cost (about 1 ms a tenant).
 * A tenant found clean is remembered with its catalog fingerprint (row versions, see
 * found-clean.ts); later runs in this process look again only at tenants whose
 * fingerprint changed. Anything that could change an item changes the fingerprint.
 *
 * @example
 * const violations = await driftChecks(ctx);
 */
import { createHash } from 'node:crypto';
import { structureItems } from '../../migrations/structure.ts';
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext } from './context.ts';
import { FoundClean } from './found-clean.ts';

const memory = new FoundClean();

export async function driftChecks(all: CheckContext): Promise<Violation[]> {
  const { tx, structures } = all;
  // Deparsing an expression locks its table: a tenant holding its own table locked is
  // skipped here (the validator names it as not checked), never waited on.
  const candidates = all.tenants.filter((t) => t.version && structures.has(t.version) && !all.locked.has(t.id));
  // What a tenant was compared with is part of the verdict too.
  const expectedHash = new Map(
    [...structures].map(([v, items]) => [v, createHash('sha256').update(items.join('\n')).digest('hex')]),
  );
  const stamp = (t: { id: string; version?: string }) => {
    const fingerprint = all.fingerprints.get(t.id);
    return fingerprint && `${expectedHash.get(t.version!)} ${fingerprint}`;
  };
  const judged = memory.toJudge(all, candidates, stamp);
  const ctx = { ...all, tenants: judged };
  if (judged.length === 0) return [];
  const versions = [...structures.keys()];
  const expectedVersions = versions.flatMap((v) => structures.get(v)!.map(() => v));
  const expectedItems = versions.flatMap((v) => structures.get(v)!);
  const rows = await tx<
    { id: string; slug: string; schema_name: string; version: string; item: string; missing: boolean }[]
  >`
    with t as materialized (
      select i.id, i.slug, i.nsp, i.schema_name, v.version
      from (${intactTenants(ctx)}) i
      join unnest(${judged.map((t) => t.id)}::text[], ${judged.map((t) => t.version!)}::text[]) as v(id, version) on v.id = i.id
    ),
    actual as materialized (${structureItems(tx, tx`select id, nsp, schema_name from t`)}),
    expected as materialized (
      select t.id, e.item from t join unnest(${expectedVersions}::text[], ${expectedItems}::text[]) as e(version, item) on e.version = t.version
    ),
    diff as (
      select coalesce(a.id, e.id) as id, coalesce(a.item, e.item) as item, a.id is null as missing
      from actual a full join expected e on e.id = a.id and e.item = a.item
      where a.id is null or e.id is null
    )
    select d.id, t.slug, t.schema_name, t.version, d.item, d.missing from diff d join t on t.id = d.id
    order by t.slug, d.item`;

  // A changed object is one item missing and another found under the same name: one violation.
  const byObject = new Map<string, { row: (typeof rows)[number]; expected?: string; found?: string }>();
  for (const row of rows) {
    const [kind, name] = row.item.split(' ', 2) as [string, string];
    const key = `${row.id} ${kind} ${name}`;
    const entry = byObject.get(key) ?? { row };
    if (row.missing) entry.expected = row.item;
    else entry.found = row.item;
    byObject.set(key, entry);
  }
  const violations: Violation[] = [...byObject.values()].map(({ row, expected, found }) => {
    const [kind, name] = (expected ?? found)!.split(' ', 2) as [string, string];
    const what = `${kind} ${row.schema_name}.${name}`;
    const rule =
      expected && found
        ? `${what} differs from the template at ${row.version}: expected "${expected}", found "${found}"`
        : expected
          ? `${what} is missing: the template at ${row.version} has "${expected}"`
          : `${what} is not in the template at ${row.version}: found "${found}"`;
    return {
      check: 'schema_drift' as const,
      tenantId: row.id,
      tenantSlug: row.slug,
      object: `${row.schema_name}.${name}`,
      rule,
      fix: `-- restore ${what} by hand to match the template at ${row.version} ($s is the tenant's schema)`,
      autofix: false,
    };
  });
  memory.record(
    judged.map((t) => [t.id, stamp(t)]),
    violations,
  );
  return violations;
}
