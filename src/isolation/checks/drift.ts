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
 * found-clean.ts `rememberingClean`); later runs in this process look again only at
 * tenants whose fingerprint changed. Anything that could change an item changes the
 * fingerprint.
 *
 * @example
 * const violations = await driftChecks(ctx);
 */
import { createHash } from 'node:crypto';
import { structureItems } from '../../migrations/structure.ts';
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext } from './context.ts';
import { rememberingClean } from './found-clean.ts';

/**
 * Judged: tenants at a version with a structure snapshot, whose tables nobody holds
 * locked (deparsing an expression locks its table: such a tenant is named as not
 * checked, never waited on). What a tenant was compared with is part of the stamp.
 */
export const driftChecks = rememberingClean(compareStructures, {
  judges: (ctx, t) => !!t.version && ctx.structures.has(t.version) && !ctx.locked.has(t.id),
  alsoStamp: ({ structures }) => {
    const expectedHash = new Map(
      [...structures].map(([v, items]) => [v, createHash('sha256').update(items.join('\n')).digest('hex')]),
    );
    return (t) => expectedHash.get(t.version!)!;
  },
});

async function compareStructures(ctx: CheckContext): Promise<Violation[]> {
  const { tx, structures, tenants: judged } = ctx;
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
  return violations;
}
