/**
 * What a check family found clean, per tenant, with the stamp of what it looked at (the
 * tenant's catalog fingerprint, see `catalogFingerprints`, plus whatever else the
 * verdict depended on). A later run in this process skips a tenant whose stamp is
 * unchanged: the catalog rows the verdict was drawn from are the same row versions.
 * In memory: a restarted service pays for one full run.
 *
 * @example
 * const rls = rememberingClean(rlsChecks);
 * const violations = await rls(ctx);   // later runs look only at tenants whose catalog changed
 */
import type { Tx } from '../../db/connect.ts';
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext, type RegistryTenant } from './context.ts';

type Family = (ctx: CheckContext) => Promise<Violation[]>;

class FoundClean {
  readonly #stamps = new Map<string, string>();

  /**
   * The tenants of `candidates` to look at: those not found clean under their stamp now.
   * A whole run also forgets tenants no longer registered.
   */
  toJudge<T extends { id: string }>(ctx: CheckContext, candidates: T[], stamp: (t: T) => string | undefined): T[] {
    if (ctx.whole) for (const id of this.#stamps.keys()) if (!ctx.fingerprints.has(id)) this.#stamps.delete(id);
    return candidates.filter((t) => {
      const now = stamp(t);
      return now === undefined || this.#stamps.get(t.id) !== now;
    });
  }

  /** After a check of `judged` (tenant id, stamp): the tenants with no violation are remembered, the rest forgotten. */
  record(judged: [string, string | undefined][], violations: Violation[]): void {
    const failing = new Set(violations.map((v) => v.tenantId));
    for (const [id, stamp] of judged) {
      if (stamp === undefined || failing.has(id)) this.#stamps.delete(id);
      else this.#stamps.set(id, stamp);
    }
  }
}

/**
 * `family`, looking only at tenants it has not found clean under their current stamp:
 * their catalog fingerprint, plus `alsoStamp` (whatever else the verdict depends on,
 * computed once per run). `judges` picks the tenants the family looks at at all; the
 * family then sees only those it must look at again. Only for families whose verdict
 * on a tenant rests on that tenant's fingerprinted catalog rows (and `alsoStamp`), and
 * which report each violation under the tenant whose rows it is about.
 */
export function rememberingClean(
  family: Family,
  options: {
    judges?: (ctx: CheckContext, tenant: RegistryTenant) => boolean;
    alsoStamp?: (ctx: CheckContext) => (tenant: RegistryTenant) => string;
  } = {},
): Family {
  const memory = new FoundClean();
  return async (ctx) => {
    const also = options.alsoStamp?.(ctx);
    const stamp = (t: RegistryTenant) => {
      const fingerprint = ctx.fingerprints.get(t.id);
      return fingerprint && (also ? `${also(t)} ${fingerprint}` : fingerprint);
    };
    const candidates = options.judges ? ctx.tenants.filter((t) => options.judges!(ctx, t)) : ctx.tenants;
    const judged = memory.toJudge(ctx, candidates, stamp);
    const violations = await family({ ...ctx, tenants: judged });
    memory.record(
      judged.map((t) => [t.id, stamp(t)]),
      violations,
    );
    return violations;
  };
}

/**
 * Each intact tenant's catalog fingerprint: a hash of the identity and row version (xmin)
 * of every catalog row the remembering families read for it (its schema, relations,
 * columns, defaults, constraints, indexes, triggers, inheritance both ways (chunks
 * included, wherever they live), types, routines and policies, and its role's oid),
 * without deparsing anything. DDL or a GRANT that could change what they see writes a
 * new row version (or adds or removes a row); the converse does not hold (VACUUM FREEZE,
 * a hypertable's new chunk) and only costs a full look. Keep it in step with
 * `structureItems` (migrations/structure.ts) and the remembering families.
 */
export async function catalogFingerprints(ctx: Pick<CheckContext, 'tx' | 'tenants'>): Promise<Map<string, string>> {
  const tx: Tx = ctx.tx;
  const rows = await tx<{ id: string; fingerprint: string }[]>`
    with s as materialized (${intactTenants(ctx as CheckContext)}),
    rel as materialized (
      select s.id, s.nsp, c.oid as relid
      from s join pg_class c on c.relnamespace = s.nsp where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
    ),
    versions as (
      select s.id, 'o' || s.role_oid as v from s
      union all
      select s.id, 'n' || n.oid || ':' || n.xmin from s join pg_namespace n on n.oid = s.nsp
      union all
      select s.id, 'r' || c.oid || ':' || c.xmin from s join pg_class c on c.relnamespace = s.nsp
      union all
      select s.id, 'f' || p.oid || ':' || p.xmin from s join pg_proc p on p.pronamespace = s.nsp
      union all
      select s.id, 't' || y.oid || ':' || y.xmin from s join pg_type y on y.typnamespace = s.nsp
      union all
      select rel.id, 'a' || a.attrelid || '.' || a.attnum || ':' || a.xmin from rel join pg_attribute a on a.attrelid = rel.relid and a.attnum > 0
      union all
      select rel.id, 'd' || d.oid || ':' || d.xmin from rel join pg_attrdef d on d.adrelid = rel.relid
      union all
      select rel.id, 'c' || k.oid || ':' || k.xmin from rel join pg_constraint k on k.conrelid = rel.relid
      union all
      select rel.id, 'i' || i.indexrelid || ':' || i.xmin from rel join pg_index i on i.indrelid = rel.relid
      union all
      select rel.id, 'g' || g.oid || ':' || g.xmin from rel join pg_trigger g on g.tgrelid = rel.relid
      union all
      select rel.id, 'h' || h.inhrelid || ':' || h.xmin from rel join pg_inherits h on h.inhrelid = rel.relid
      union all
      -- Chunks kept outside the tenant's schema (those inside are relations above).
      select rel.id, 'k' || k.oid || ':' || k.xmin || ':' || h.xmin
      from rel join pg_inherits h on h.inhparent = rel.relid join pg_class k on k.oid = h.inhrelid
      where k.relnamespace <> rel.nsp
      union all
      select rel.id, 'p' || p.oid || ':' || p.xmin from rel join pg_policy p on p.polrelid = rel.relid
    )
    -- A sum of 64-bit hashes: order-free, so no sort of every key (half the time of an md5 of them in order).
    select id, sum(hashtextextended(v, 0))::text as fingerprint from versions group by id`;
  return new Map(rows.map((r) => [r.id, r.fingerprint]));
}
