/**
 * The isolation validator: audits every tenant's schema, role, grants, RLS, policies,
 * code and chunks against the isolation rules (see `checks/catalog.ts`), from the
 * catalog alone. It never reads a tenant row.
 *
 * It runs in one read-only, repeatable-read transaction, so the registry and the
 * catalog are one consistent snapshot (a tenant being provisioned meanwhile is either
 * wholly visible or not at all). The registry is read first, with the connection's own
 * role; then the transaction switches to the NOLOGIN role `tf_validator`, which holds
 * no privilege on any table, and reads `pg_catalog` only.
 *
 * @example
 * const report = await validate(platform.control);                  // every tenant
 * const one = await validate(platform.control, { tenant: 'acme' });  // one tenant's rules
 * const fixed = await validate(platform.control, { fix: true });     // safe repairs, then re-check
 */
import { performance } from 'node:perf_hooks';
import type { Sql, Tx } from '../db/connect.ts';
import { ROLES } from '../db/roles.ts';
import { notFound } from '../errors.ts';
import { CHECK_NAMES, type CheckName, type Violation } from './checks/catalog.ts';
import { chunkChecks } from './checks/chunks.ts';
import type { CheckContext, RegistryTenant } from './checks/context.ts';
import { defaultPrivilegeChecks } from './checks/default-privileges.ts';
import { driftChecks } from './checks/drift.ts';
import { catalogFingerprints, rememberingClean } from './checks/found-clean.ts';
import { functionChecks } from './checks/functions.ts';
import { foreignGrantChecks, grantChecks } from './checks/grants.ts';
import { ownershipChecks } from './checks/ownership.ts';
import { platformChecks } from './checks/platform.ts';
import { policyChecks, VANISHED } from './checks/policies.ts';
import { registryChecks } from './checks/registry.ts';
import { rlsChecks } from './checks/rls.ts';
import { roleSettingChecks } from './checks/role-settings.ts';
import { roleChecks } from './checks/roles.ts';
import { routineChecks } from './checks/routines.ts';
import { tenantDefaultPrivilegeChecks } from './checks/tenant-default-privileges.ts';
import { applyFixes, type FixResult } from './fix.ts';
import { SQLSTATE } from '../db/sqlstate.ts';

// Families that judge a tenant by its own catalog rows alone skip, in later runs, the
// tenants they found clean whose fingerprint is unchanged (drift and policies do so
// themselves, with more in their stamps). The others look at every tenant every time.
const FAMILIES = [
  registryChecks,
  roleChecks,
  rememberingClean(ownershipChecks),
  rememberingClean(rlsChecks),
  policyChecks,
  rememberingClean(grantChecks),
  foreignGrantChecks,
  defaultPrivilegeChecks,
  tenantDefaultPrivilegeChecks,
  roleSettingChecks,
  routineChecks,
  rememberingClean(functionChecks),
  rememberingClean(chunkChecks),
  platformChecks,
  driftChecks,
];

export type ValidateOptions = {
  /** Only this tenant's rules (id or slug); orphans and platform-wide rules are skipped. */
  tenant?: string;
  /** Apply the safe repairs (`autofix`), then check again. */
  fix?: boolean;
};

export type IsolationReport = {
  outcome: 'clean' | 'violations';
  scope: { tenant: string | null };
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  tenantsChecked: number;
  /** Violations per check; every check is listed, clean ones with 0. */
  counts: Record<CheckName, number>;
  violations: Violation[];
  /** Tenants some of whose rules could not be checked in this run, and why. */
  notChecked: NotChecked[];
  /** With `fix`: what was applied before the final check. */
  fixes?: FixResult[];
};

export class ValidatorError extends Error {
  override name = 'ValidatorError';
}

export async function validate(sql: Sql, options: ValidateOptions = {}): Promise<IsolationReport> {
  const startedAt = new Date();
  const started = performance.now();
  const inspectAll = () =>
    retryRaces(() => sql.begin('isolation level repeatable read read only', (tx) => inspect(tx as Tx, options.tenant)));
  let result = await inspectAll();
  let fixes: FixResult[] | undefined;
  if (options.fix) {
    fixes = await applyFixes(sql, result.violations);
    if (fixes.length) result = await inspectAll();
  }
  const counts = Object.fromEntries(CHECK_NAMES.map((name) => [name, 0])) as Record<CheckName, number>;
  for (const v of result.violations) counts[v.check]++;
  return {
    outcome: result.violations.length ? 'violations' : 'clean',
    scope: { tenant: options.tenant ?? null },
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    tenantsChecked: result.tenantsChecked,
    counts,
    violations: result.violations,
    notChecked: result.notChecked,
    ...(fixes ? { fixes } : {}),
  };
}

/**
 * Runs every check inside the caller's transaction: reads the registry, then switches
 * to the validator role for the rest of it (`set local`). `validate` is the usual way in;
 * this one lets a caller check a state it has not committed.
 */
export type NotChecked = { tenantId: string; tenantSlug: string; reason: string };

export async function inspect(
  tx: Tx,
  tenant?: string,
): Promise<{ tenantsChecked: number; violations: Violation[]; notChecked: NotChecked[] }> {
  const tenants = await tx<RegistryTenant[]>`
    select id::text, coalesce(slug, '(pooled)') as slug, schema_name as schema, role_name as role, status, plan,
           template_version as version
    from platform.tenants
    -- Warm-pool tenants are checked like any other: their schemas are not orphans.
    where status <> 'purged' ${tenant ? tx`and (id::text = ${tenant} or lower(slug) = lower(${tenant}))` : tx``}
    order by created_at, id`;
  if (tenant && tenants.length === 0) throw notFound('tenant', tenant);
  const locked = await lockedTenants(tx, tenants);
  const structures = new Map(
    (
      await tx<{ version: string; structure: string[] }[]>`
      select version, structure from platform.template_versions where version = any(${[...new Set(tenants.map((t) => t.version!))]})`
    ).map((r) => [r.version, r.structure]),
  );
  try {
    await tx.unsafe(`set local role ${ROLES.validator}`);
  } catch (err) {
    if ((err as { code?: string }).code !== SQLSTATE.insufficientPrivilege) throw err;
    throw new ValidatorError(
      `this connection's role cannot act as ${ROLES.validator}; a superuser runs: grant ${ROLES.validator} to <the DATABASE_URL role>`,
    );
  }
  // pg_catalog only, first in the path so nothing can shadow its names; short lock waits,
  // as deparsing a policy takes a share lock on its table (a lock taken after the look
  // at pg_locks makes the run fail fast and be taken again); neither JIT nor parallel
  // workers, whose start-up (JIT: ~100 ms a query) costs more than these queries.
  await tx`
    select set_config('search_path', 'pg_catalog, pg_temp', true), set_config('statement_timeout', '60s', true),
           set_config('lock_timeout', '1s', true), set_config('jit', 'off', true),
           set_config('max_parallel_workers_per_gather', '0', true)`;
  const fingerprints = await catalogFingerprints({ tx, tenants });
  const ctx: CheckContext = { tx, tenants, whole: !tenant, locked, structures, fingerprints };
  const violations = (await Promise.all(FAMILIES.map((family) => family(ctx)))).flat().map(normalise);
  violations.sort(byCheckThenObject);
  const notChecked = tenants
    .filter((t) => locked.has(t.id))
    .map((t) => ({
      tenantId: t.id,
      tenantSlug: t.slug,
      reason: `policies not checked: a table is locked by pid ${locked.get(t.id)}`,
    }));
  return { tenantsChecked: tenants.length, violations, notChecked };
}

/**
 * Tenants with a table some other session holds, or waits for, in ACCESS EXCLUSIVE mode
 * (a waiter queues every later reader behind it too), with that session's pid. A tenant
 * can lock its own tables from its login; it must not be able to stop the audit of all.
 */
async function lockedTenants(tx: Tx, tenants: RegistryTenant[]): Promise<Map<string, number>> {
  const rows = await tx<{ schema: string; pid: number }[]>`
    select distinct on (n.nspname) n.nspname as schema, l.pid
    from pg_locks l join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace
    where l.locktype = 'relation' and l.mode = 'AccessExclusiveLock' and l.pid <> pg_backend_pid()
      and l.database = (select oid from pg_database where datname = current_database())
      and n.nspname = any(${tenants.map((t) => t.schema)}::text[])
    order by n.nspname, l.granted desc`;
  const bySchema = new Map(rows.map((r) => [r.schema, r.pid]));
  return new Map(tenants.filter((t) => bySchema.has(t.schema)).map((t) => [t.id, bySchema.get(t.schema)!]));
}

/**
 * Deparsing a policy opens its table, which a concurrent purge may have dropped since
 * the snapshot was taken, or may hold locked: such a run is simply taken again.
 */
async function retryRaces<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const raced =
        e.code === SQLSTATE.lockNotAvailable ||
        (e.code === SQLSTATE.internalError && /could not open relation/.test(e.message ?? '')) ||
        (e.code === SQLSTATE.invalidTextRepresentation && (e.message ?? '').includes(VANISHED));
      if (!raced || attempt >= attempts) throw err;
    }
  }
}

function normalise(v: Violation): Violation {
  return {
    check: v.check,
    tenantId: v.tenantId,
    tenantSlug: v.tenantSlug,
    object: v.object,
    rule: v.rule,
    fix: v.fix,
    autofix: v.autofix,
  };
}

function byCheckThenObject(a: Violation, b: Violation): number {
  return (
    CHECK_NAMES.indexOf(a.check) - CHECK_NAMES.indexOf(b.check) ||
    (a.tenantSlug ?? '').localeCompare(b.tenantSlug ?? '') ||
    a.object.localeCompare(b.object)
  );
}
