/**
 * Lane warming: the first query on a tenant's table in a backend builds that backend's
 * cache entries for the table, its indexes and its row-security policies (the six common
 * reads cost 1.8 ms each cold against 0.9 ms warm). Warming pays that ahead of requests:
 * for each tenant, on its home seat (db/runtime-lanes.ts), one round trip in the tenant's
 * context that plans (EXPLAIN, never runs) a query on each of its tables, opening them all.
 * It runs only when that seat is free and no request waits for it, a few tenants at a
 * time, so requests keep priority; a seat that may serve no more tenants is left alone.
 *
 * The service warms the recently active tenants at start and after a database outage
 * (so a restart or failover does not land the first requests of every tenant on cold
 * backends; tenants/activity.ts says which), each tenant it creates, any other tenant at
 * its first request, and the tenants a connection replaced for its age had served, on
 * its successor.
 *
 * @example
 * const warming = new LaneWarming(lanes, async () => ['portfolios', 'orders'], log);
 * warming.add(tenants);
 * await warming.idle();
 */
import type { Logger } from '../log.ts';
import type { RuntimeLanes } from './runtime-lanes.ts';
import { contextStatements, type TenantContext } from './with-tenant.ts';

/** Warming queries at once across the instance: enough to finish soon, few enough to leave the server's CPU to requests. */
const CONCURRENCY = 2;
/** A tenant that locks its own table (from its direct login) holds its home seat this long at most. */
const LOCK_TIMEOUT_MS = 100;

export type WarmingStats = { pending: number; warmed: number; skipped: number; failed: number };

export class LaneWarming {
  /** By tenant id, in the order added: a tenant queued twice is warmed once. */
  readonly #queue = new Map<string, TenantContext>();
  /** Every tenant added, by role name: what `again` warms. */
  readonly #known = new Map<string, TenantContext>();
  readonly #stats = { warmed: 0, skipped: 0, failed: 0 };
  #running = 0;
  #stopped = false;
  readonly #idle: (() => void)[] = [];
  /** The table list, read again with each `add` (a template migration may have changed it). */
  #tablesNow: Promise<readonly string[]> | undefined;
  /** Whether a failure has been logged since the last `add`: one line per round, the rest counted. */
  #failureLogged = false;

  /** `tables`: the template's tables now (each tenant has them once migrated). */
  constructor(
    private readonly lanes: RuntimeLanes,
    private readonly tables: () => Promise<readonly string[]>,
    private readonly log: Logger,
  ) {}

  /** Queues tenants to warm on their home seats. */
  add(tenants: readonly TenantContext[]): void {
    if (this.#stopped || tenants.length === 0) return;
    this.#tablesNow = this.tables();
    this.#failureLogged = false;
    this.#tablesNow.catch(() => {}); // each tenant's warming counts the failure
    for (const tenant of tenants) {
      this.#queue.set(tenant.id, tenant);
      this.#known.set(tenant.role, tenant);
    }
    while (this.#running < CONCURRENCY && this.#queue.size) void this.#work();
  }

  /** Queues the tenant unless it was added before (a tenant's first request, when it was not warmed at start). */
  addUnwarmed(tenant: TenantContext): void {
    if (!this.#known.has(tenant.role)) this.add([tenant]);
  }

  /** Warms again the tenants with these role names that were added before (a connection they used was replaced). */
  again(roles: readonly string[]): void {
    this.add(roles.flatMap((role) => this.#known.get(role) ?? []));
  }

  stats(): WarmingStats {
    return { pending: this.#queue.size + this.#running, ...this.#stats };
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drops what is queued and waits for the warming in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.clear();
    await this.idle();
  }

  async #work(): Promise<void> {
    this.#running++;
    try {
      for (let tenant = this.#next(); tenant; tenant = this.#next()) {
        try {
          const plans = (await this.#tablesNow!).map((t) => `explain select from "${t.replaceAll('"', '""')}"`);
          const sql = [contextStatements(tenant, { readOnly: true }, LOCK_TIMEOUT_MS), ...plans, 'commit'].join('; ');
          const ran = await this.lanes.laneOf(tenant.role).whenHomeIdle(tenant.role, async (conn) => {
            // A failed statement leaves the transaction open: the seat's next request must not find it.
            await conn.unsafe(sql).catch(async (err: unknown) => {
              await conn`rollback`.catch(() => {});
              throw err;
            });
          });
          this.#stats[ran ? 'warmed' : 'skipped']++;
        } catch (err) {
          // The tenant's requests will open its tables themselves: only slower. Not warmed
          // again on a replaced connection (it may be suspended or gone); a start or an
          // outage's end lists the active tenants anew.
          this.#stats.failed++;
          this.#known.delete(tenant.role);
          if (!this.#failureLogged)
            this.log.warn({ err, tenantId: tenant.id }, 'warming a tenant failed (more failures are only counted)');
          this.#failureLogged = true;
        }
      }
    } finally {
      this.#running--;
      if (this.#running === 0 && this.#queue.size === 0) for (const done of this.#idle.splice(0)) done();
    }
  }

  #next(): TenantContext | undefined {
    const [first] = this.#queue.values();
    if (first) this.#queue.delete(first.id);
    return first;
  }
}
