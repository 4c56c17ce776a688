/**
 * The service's runtime connections: one lane per runtime role (db/roles.ts), each lane
 * a few connections ("seats"), each seat its own pool of one. A lane's role can act only
 * as the tenants of that lane. Within its lane a tenant has a home seat, taken whenever
 * it is free; when it is busy, a free seat of the lane serves instead. So each backend
 * opens the tables (and fills its catalog caches with them) of about 1/(lanes x seats)
 * of the tenants, while one busy tenant can still use its whole lane.
 *
 * @example
 * const lanes = openRuntimeLanes(appUrl, password, { connections: 3, name: 'app' });
 * await withTenant(lanes, tenant, (tx) => tx`select 1`);   // on the tenant's home seat
 */
import type { ReservedSql } from 'postgres';
import { openPool, type PoolOptions, type Sql } from './connect.ts';
import { runtimeRoleOf } from './names.ts';
import { RUNTIME_ROLES } from './roles.ts';

/**
 * A connection taken from a lane: give it back with `release` (not the connection's own).
 * `ending` says its last statement (a COMMIT) is sent, so it will be free within a
 * round trip: the tenant's next request may wait for it rather than go elsewhere.
 */
export type LaneConnection = { conn: ReservedSql; release: () => void; ending: () => void };

export class Lane {
  /** Connections taken from each seat and not yet released (a seat has one; the rest wait for it). */
  readonly #taken: number[];
  /** Of those, the ones whose last statement is sent. */
  readonly #ending: number[];

  constructor(readonly seats: readonly Sql[]) {
    this.#taken = seats.map(() => 0);
    this.#ending = seats.map(() => 0);
  }

  /**
   * A connection for the tenant: its home seat when it is free or only finishing a
   * transaction (a read-only request hands its answer back before its COMMIT completes,
   * and the same tenant's next request must not lose its backend for that), else a free
   * seat of the lane, else it waits for its home seat.
   */
  async reserve(tenantName: string): Promise<LaneConnection> {
    const home = homeSeat(tenantName, this.seats.length);
    const free = this.#taken[home] === this.#ending[home] ? home : this.#taken.indexOf(0);
    const seat = free === -1 ? home : free;
    this.#taken[seat]!++;
    let conn: ReservedSql;
    try {
      conn = await this.seats[seat]!.reserve();
    } catch (err) {
      this.#taken[seat]!--;
      throw err;
    }
    let ending = false;
    let released = false;
    return {
      conn,
      ending: () => {
        if (ending || released) return;
        ending = true;
        this.#ending[seat]!++;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#taken[seat]!--;
        if (ending) this.#ending[seat]!--;
        conn.release();
      },
    };
  }
}

/** The tenant's seat within its lane: from the hex digits after the one that chose the lane. */
function homeSeat(tenantName: string, seats: number): number {
  const digits = /^tenant_[0-9a-f]([0-9a-f]{1,6})/.exec(tenantName)?.[1] ?? '0';
  return Number.parseInt(digits, 16) % seats;
}

export class RuntimeLanes {
  readonly #byRole: Map<string, Lane>;

  /** `lanes[i]` logs in as lane i's role at `urls[i]`. */
  constructor(
    readonly lanes: readonly Lane[],
    readonly urls: readonly string[],
  ) {
    if (lanes.length !== RUNTIME_ROLES.length || urls.length !== RUNTIME_ROLES.length)
      throw new Error(`expected ${RUNTIME_ROLES.length} lanes and URLs, got ${lanes.length} and ${urls.length}`);
    this.#byRole = new Map(RUNTIME_ROLES.map((role, i) => [role, lanes[i]!]));
  }

  /** The lane whose role may act as this tenant (`tenantName`: its schema or role name). */
  laneOf(tenantName: string): Lane {
    return this.#byRole.get(runtimeRoleOf(tenantName))!;
  }

  /** A pool logged in as this tenant's lane role (its home seat): for tools and tests. */
  forTenant(tenantName: string): Sql {
    const lane = this.laneOf(tenantName);
    return lane.seats[homeSeat(tenantName, lane.seats.length)]!;
  }

  /** Every seat's pool, lane by lane. */
  get pools(): Sql[] {
    return this.lanes.flatMap((lane) => lane.seats);
  }
}

/**
 * For each lane, `connections` seats logging in as the lane's role with `password` at
 * `url`'s host, port and database (`url`'s own user, if any, is replaced).
 */
export function openRuntimeLanes(
  url: string,
  password: string,
  options: Omit<PoolOptions, 'max'> & { connections: number },
): RuntimeLanes {
  const urls = RUNTIME_ROLES.map((role) => {
    const u = new URL(url);
    u.username = role;
    u.password = encodeURIComponent(password);
    return u.toString();
  });
  const lanes = urls.map(
    (laneUrl, i) =>
      new Lane(
        Array.from({ length: options.connections }, (_, seat) =>
          openPool(laneUrl, { ...options, max: 1, name: `${options.name ?? 'app'}:${RUNTIME_ROLES[i]}:${seat}` }),
        ),
      ),
  );
  return new RuntimeLanes(lanes, urls);
}
