/**
 * A per-tenant cap on concurrent use of a runtime lane's pool. Without it, one tenant whose
 * requests wait on locks (or are simply many) holds every pooled connection and every
 * other tenant's requests queue behind it. With it, a tenant holds at most `perTenant`
 * connections; its further requests wait in its own queue, which never delays another
 * tenant's, and beyond `queue` waiting requests it is told to slow down (429).
 *
 * @example
 * const gate = new TenantGate({ perTenant: 5, queue: 200 });
 * const release = await gate.enter(tenant.id);
 * try { ... } finally { release(); }
 */
import { AppError } from '../errors.ts';

export type TenantGateOptions = { perTenant: number; queue: number };

type Lane = { active: number; waiting: (() => void)[] };

export class TenantGate {
  readonly #lanes = new Map<string, Lane>();
  /** Requests told to slow down (429), since the gate was made. */
  #refused = 0;

  constructor(readonly options: TenantGateOptions) {}

  /** Resolves when the tenant may use a connection; call the returned function when done. */
  async enter(tenantId: string): Promise<() => void> {
    let lane = this.#lanes.get(tenantId);
    if (!lane) this.#lanes.set(tenantId, (lane = { active: 0, waiting: [] }));
    if (lane.active < this.options.perTenant) {
      lane.active++;
    } else {
      if (lane.waiting.length >= this.options.queue) {
        this.#refused++;
        throw new AppError(
          429,
          'tenant_concurrency_exceeded',
          'Too many requests in flight',
          `this tenant already has ${lane.active} requests running and ${lane.waiting.length} waiting; retry shortly`,
          { retryAfter: 1 },
        );
      }
      // The slot is handed over by the releasing request (active stays the same).
      await new Promise<void>((resolve) => lane!.waiting.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = lane!.waiting.shift();
      if (next) return next();
      lane!.active--;
      if (lane!.active === 0) this.#lanes.delete(tenantId);
    };
  }

  /** For metrics: requests waiting behind their tenant's cap now, and those refused so far. */
  stats(): { waiting: number; refused: number } {
    let waiting = 0;
    for (const lane of this.#lanes.values()) waiting += lane.waiting.length;
    return { waiting, refused: this.#refused };
  }

  /** Requests running and waiting for a tenant (for tests and metrics). */
  load(tenantId: string): { active: number; waiting: number } {
    const lane = this.#lanes.get(tenantId);
    return { active: lane?.active ?? 0, waiting: lane?.waiting.length ?? 0 };
  }
}
