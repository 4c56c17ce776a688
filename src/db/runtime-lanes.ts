/**
 * The service's runtime connections: one lane per runtime role (db/roles.ts), each lane
 * a few connections ("seats"), each seat its own pool of one. A lane's role can act only
 * as the tenants of that lane. Within its lane a tenant has a home seat, which its
 * requests wait for briefly when it is busy before taking another. So each backend opens
 * the tables (and fills its catalog caches with them) of about 1/(lanes x seats) of the
 * tenants, while one busy tenant can still use its whole lane.
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
 * `ending` says only its COMMIT is left (a read-only request answers before that
 * completes): the tenant no longer counts as busy, and requests waiting for this seat as
 * their home wait for that COMMIT however long it takes, instead of taking another
 * backend after `homeWaitMs`.
 */
export type LaneConnection = { conn: ReservedSql; release: () => void; ending: () => void };

/**
 * How long a request waits for its busy home seat before it takes any free seat of the
 * lane: about what a first touch of a tenant's table costs a backend (1-2.5 ms more than
 * a warm one), so a short wait is the cheaper, while a long query at home never holds
 * another tenant's request back for longer than this.
 */
const HOME_WAIT_MS = 5;

type Waiter = { home: number; spill: boolean; grant: (seat: number) => void; timer?: NodeJS.Timeout };

export class Lane {
  /** Seats held by a request; a held seat is handed straight to the next waiter for it. */
  readonly #busy: boolean[];
  /** Seats whose request has only its COMMIT left. */
  readonly #ending: boolean[];
  readonly #waiting: Waiter[] = [];
  /** Seats each tenant holds in this lane now. */
  readonly #holding = new Map<string, number>();
  /** Requests served on a seat other than their tenant's home, since the lane opened. */
  #awayFromHome = 0;

  constructor(
    readonly seats: readonly Sql[],
    readonly homeWaitMs = HOME_WAIT_MS,
  ) {
    this.#busy = seats.map(() => false);
    this.#ending = seats.map(() => false);
  }

  /**
   * A connection for the tenant: its home seat, waiting for it up to `homeWaitMs`, then
   * whichever seat of the lane frees first. A tenant that already holds a seat here (a
   * busy tenant) takes any free seat at once, so it can use its whole lane.
   */
  async reserve(tenantName: string): Promise<LaneConnection> {
    const home = homeSeat(tenantName, this.seats.length);
    const seat = await this.#seatFor(tenantName, home);
    if (seat !== home) this.#awayFromHome++;
    this.#holding.set(tenantName, (this.#holding.get(tenantName) ?? 0) + 1);
    let holding = true;
    let released = false;
    const ending = () => {
      if (!holding) return;
      holding = false;
      if (!released) this.#ending[seat] = true;
      const held = this.#holding.get(tenantName)! - 1;
      if (held === 0) this.#holding.delete(tenantName);
      else this.#holding.set(tenantName, held);
    };
    const leave = () => {
      if (released) return;
      released = true;
      ending();
      this.#free(seat);
    };
    let conn: ReservedSql;
    try {
      conn = await this.seats[seat]!.reserve();
    } catch (err) {
      leave();
      throw err;
    }
    return {
      conn,
      ending,
      release: () => {
        // The connection goes back to its seat's pool before the seat goes to a waiter.
        if (!released) conn.release();
        leave();
      },
    };
  }

  /** For metrics: seats, how many are held, requests waiting for one, and requests served away from home. */
  stats(): { seats: number; busy: number; waiting: number; awayFromHome: number } {
    return {
      seats: this.seats.length,
      busy: this.#busy.filter(Boolean).length,
      waiting: this.#waiting.length,
      awayFromHome: this.#awayFromHome,
    };
  }

  #seatFor(tenantName: string, home: number): number | Promise<number> {
    if (!this.#busy[home]) return this.#take(home);
    const busyTenant = this.#holding.has(tenantName);
    if (busyTenant) {
      const free = this.#busy.indexOf(false);
      if (free !== -1) return this.#take(free);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { home, spill: busyTenant, grant: resolve };
      this.#waiting.push(waiter);
      if (busyTenant) return;
      waiter.timer = setTimeout(() => {
        // A home seat that only awaits a COMMIT is about to be free: a round trip, however slow the server is now.
        if (this.#ending[home]) return;
        waiter.spill = true;
        const free = this.#busy.indexOf(false);
        if (free === -1) return; // the first seat released goes to it
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        waiter.grant(this.#take(free));
      }, this.homeWaitMs);
    });
  }

  #take(seat: number): number {
    this.#busy[seat] = true;
    return seat;
  }

  /** A released seat goes to the first request waiting for it as home, else to the first one that may go anywhere. */
  #free(seat: number): void {
    this.#ending[seat] = false;
    let next = this.#waiting.findIndex((w) => w.home === seat);
    if (next === -1) next = this.#waiting.findIndex((w) => w.spill);
    if (next === -1) {
      this.#busy[seat] = false;
      return;
    }
    const [waiter] = this.#waiting.splice(next, 1);
    clearTimeout(waiter!.timer);
    waiter!.grant(seat);
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
