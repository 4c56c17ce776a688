/**
 * Tenant activity: which tenants send API requests. A request only puts the tenant's id
 * in a set; `flush` (every minute, from platform.ts) writes `tenants.last_request_at`
 * for the tenants seen since, at most once per `RESOLUTION` each, so a busy fleet
 * costs the registry a few row updates a second rather than one per request. The
 * service warms, at start, only the tenants that were created or sent a request
 * recently (TENANTFORGE_WARM_WITHIN), and a tenant's first request on an instance
 * queues the warming of its other tables (`onFirstRequest`).
 *
 * A flush that fails keeps what it had to write for the next one: a restart of the
 * database loses no sighting. Requests made with a tenant's own database login do not
 * pass through here.
 *
 * @example
 * const activity = new TenantActivity(control);
 * activity.onFirstRequest((tenant) => warming.addUnwarmed(tenant));
 * activity.seen(tenant);            // per request
 * await activity.flush();           // on a schedule
 */
import type { Sql } from '../db/connect.ts';
import { SQLSTATE } from '../db/sqlstate.ts';
import type { TenantContext } from '../db/with-tenant.ts';

/** `last_request_at` is written again only when older than this. */
const RESOLUTION = '15 minutes';
/** How long a flush waits for a tenant row another transaction holds locked. */
const LOCK_TIMEOUT_MS = 1_000;

export class TenantActivity {
  /** Seen since the last flush that succeeded. */
  #pending = new Set<string>();
  /** Seen since this instance started: a first request is noticed once. */
  readonly #ever = new Set<string>();
  readonly #firstRequestListeners: ((tenant: TenantContext) => void)[] = [];

  constructor(private readonly sql: Sql) {}

  /** Records a request of the tenant (no database work). */
  seen(tenant: TenantContext): void {
    this.#pending.add(tenant.id);
    if (this.#ever.has(tenant.id)) return;
    this.#ever.add(tenant.id);
    for (const listener of this.#firstRequestListeners) listener(tenant);
  }

  /** Called on each tenant's first request since this instance started. */
  onFirstRequest(listener: (tenant: TenantContext) => void): void {
    this.#firstRequestListeners.push(listener);
  }

  /**
   * Writes what was seen. A row another transaction holds locked (a suspension, a plan
   * change) is not waited for long: the flush gives up and the next one writes it.
   */
  async flush(): Promise<{ written: number; retained: number }> {
    if (this.#pending.size === 0) return { written: 0, retained: 0 };
    const ids = [...this.#pending];
    this.#pending = new Set();
    try {
      const written = await this.sql.begin(async (tx) => {
        await tx`select set_config('lock_timeout', ${String(LOCK_TIMEOUT_MS)}, true)`;
        return tx`
          update platform.tenants set last_request_at = now()
          where id = any(${ids}::uuid[]) and status = 'active'
            and (last_request_at is null or last_request_at < now() - ${RESOLUTION}::interval)`;
      });
      return { written: written.count, retained: 0 };
    } catch (err) {
      for (const id of ids) this.#pending.add(id);
      if ((err as { code?: string }).code === SQLSTATE.lockNotAvailable) return { written: 0, retained: ids.length };
      throw err;
    }
  }
}
