/**
 * The service's runtime connections: one lane per runtime role (db/roles.ts), each lane
 * a few connections ("seats"), each seat its own pool of one. A lane's role can act only
 * as the tenants of that lane. Within its lane a tenant has a home seat, which its
 * requests wait for briefly when it is busy before taking another. So each backend opens
 * the tables (and fills its catalog caches with them) of about 1/(lanes x seats) of the
 * tenants, while one busy tenant can still use its whole lane. A seat's connection is
 * replaced after it has served a given number of different tenants, so no backend's
 * caches grow with the whole tenant count, and after a given age (see `SeatRenewal`).
 *
 * @example
 * const lanes = openRuntimeLanes(appUrl, password, { connections: 3, name: 'app' });
 * await withTenant(lanes, tenant, (tx) => tx`select 1`);   // on the tenant's home seat
 */
import type { ReservedSql } from 'postgres';
import { openPool, type PoolOptions, type Sql, withJitter } from './connect.ts';
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

/** `idle`: background work (lane-warming.ts), granted its seat only when no request wants it. */
type Waiter = { home: number; spill: boolean; idle?: boolean; grant: (seat: number) => void; timer?: NodeJS.Timeout };

/**
 * When a seat's connection is replaced by a new one from `open`: a connection serves at
 * most `maxTenants` different tenants, and a request of one more gets a new one. A
 * backend keeps the catalog entries and foreign-key plans of every tenant it served
 * until it exits, and the age limit alone bounds them only by time: with enough
 * tenants, a backend that lives 30 minutes could still serve all of its lane's.
 *
 * A connection older than `maxAgeMs` (each draws its own, up to half again, so those
 * opened together are not all replaced together) is replaced before its next request,
 * and `onAged` is told the tenants it served: the ones its successor will serve, whose
 * tables it has yet to open (lane-warming.ts opens them ahead of their requests).
 */
export type SeatRenewal = {
  maxTenants?: number;
  maxAgeMs?: number;
  open: (seat: number) => Sql;
  onAged?: (tenantNames: string[]) => void;
};

export class Lane {
  readonly #seats: Sql[];
  /** The different tenants each seat's current connection has served (tracked with a renewal only). */
  readonly #served: Set<string>[];
  /** When (performance.now()) each seat's current connection is to be replaced for its age. */
  readonly #replaceAt: number[];
  /** Replaced connections still ending. */
  readonly #retiring = new Set<Promise<void>>();
  #renewed = 0;
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
    seats: readonly Sql[],
    readonly homeWaitMs = HOME_WAIT_MS,
    readonly renewal?: SeatRenewal,
  ) {
    this.#seats = [...seats];
    this.#served = seats.map(() => new Set());
    this.#replaceAt = seats.map(() => this.#lifetimeEnd());
    this.#busy = seats.map(() => false);
    this.#ending = seats.map(() => false);
  }

  /** Each seat's pool (of one connection) now: a renewal replaces it. */
  get seats(): readonly Sql[] {
    return this.#seats;
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
    this.#admit(seat, tenantName);
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
      conn = await this.#seats[seat]!.reserve();
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

  /**
   * Runs `work` on the tenant's home seat when that seat is free and no request waits for
   * it, counting the tenant as served there. Returns false without running it if the seat
   * may serve no more tenants (see `SeatRenewal`): background work never renews a seat.
   */
  async whenHomeIdle(tenantName: string, work: (conn: ReservedSql) => Promise<void>): Promise<boolean> {
    const home = homeSeat(tenantName, this.seats.length);
    if (this.#full(home, tenantName)) return false;
    const seat =
      !this.#busy[home] && !this.#waiting.some((w) => w.home === home)
        ? this.#take(home)
        : await new Promise<number>((grant) => this.#waiting.push({ home, spill: false, idle: true, grant }));
    try {
      // Checked again: requests may have brought the seat new tenants meanwhile.
      if (this.#full(seat, tenantName)) return false;
      if (this.renewal) this.#served[seat]!.add(tenantName);
      const conn = await this.#seats[seat]!.reserve();
      try {
        await work(conn);
      } finally {
        conn.release();
      }
      return true;
    } finally {
      this.#free(seat);
    }
  }

  /**
   * For metrics: seats, how many are held, requests waiting for one, requests served away
   * from home, and connections replaced by the renewal.
   */
  stats(): { seats: number; busy: number; waiting: number; awayFromHome: number; renewed: number } {
    return {
      seats: this.#seats.length,
      busy: this.#busy.filter(Boolean).length,
      waiting: this.#waiting.filter((w) => !w.idle).length,
      awayFromHome: this.#awayFromHome,
      renewed: this.#renewed,
    };
  }

  /** Ends every seat's pool, and waits for replaced ones still ending. */
  async end(options?: { timeout?: number }): Promise<void> {
    await Promise.all([...this.#seats.map((seat) => seat.end(options)), ...this.#retiring]);
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

  /**
   * A released seat goes to the first request waiting for it as home, else to the first
   * one that may go anywhere, else to background work for it.
   */
  #free(seat: number): void {
    this.#ending[seat] = false;
    let next = this.#waiting.findIndex((w) => w.home === seat && !w.idle);
    if (next === -1) next = this.#waiting.findIndex((w) => w.spill);
    if (next === -1) next = this.#waiting.findIndex((w) => w.home === seat);
    if (next === -1) {
      this.#busy[seat] = false;
      return;
    }
    const [waiter] = this.#waiting.splice(next, 1);
    clearTimeout(waiter!.timer);
    waiter!.grant(seat);
  }

  /**
   * Counts the tenant at the seat, first replacing the seat's connection if it is too old
   * or this tenant would be one more than it may serve (lanes given a renewal only). Runs
   * while the request holds the seat and before it takes the connection, which is
   * therefore idle: the old pool ends at once.
   */
  #admit(seat: number, tenantName: string): void {
    const renewal = this.renewal;
    if (!renewal) return;
    const served = this.#served[seat]!;
    const aged = performance.now() >= this.#replaceAt[seat]!;
    if (!aged && !this.#full(seat, tenantName)) {
      served.add(tenantName);
      return;
    }
    const retired = this.#seats[seat]!;
    this.#seats[seat] = renewal.open(seat);
    this.#served[seat] = new Set([tenantName]);
    this.#replaceAt[seat] = this.#lifetimeEnd();
    this.#renewed++;
    const ended: Promise<void> = retired
      .end({ timeout: 5 })
      .catch(() => {})
      .finally(() => this.#retiring.delete(ended));
    this.#retiring.add(ended);
    if (aged) renewal.onAged?.([...served]);
  }

  /** Whether serving this tenant would make the seat's connection serve more tenants than it may. */
  #full(seat: number, tenantName: string): boolean {
    const served = this.#served[seat]!;
    return !served.has(tenantName) && served.size >= (this.renewal?.maxTenants ?? Number.POSITIVE_INFINITY);
  }

  #lifetimeEnd(): number {
    const maxAgeMs = this.renewal?.maxAgeMs;
    return maxAgeMs ? performance.now() + withJitter(maxAgeMs) : Number.POSITIVE_INFINITY;
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

  async end(options?: { timeout?: number }): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.end(options)));
  }
}

/**
 * For each lane, `connections` seats logging in as the lane's role with `password` at
 * `url`'s host, port and database (`url`'s own user, if any, is replaced). A seat's
 * connection is replaced after serving `maxTenantsPerConnection` different tenants, or
 * after `maxLifetimeSeconds` (then `onAged` hears whom it served); it is never closed
 * for being idle, which would empty its caches while its tenants are quiet.
 */
export function openRuntimeLanes(
  url: string,
  password: string,
  options: Omit<PoolOptions, 'max' | 'idleTimeoutSeconds'> & {
    connections: number;
    maxTenantsPerConnection?: number;
    onAged?: SeatRenewal['onAged'];
  },
): RuntimeLanes {
  const urls = RUNTIME_ROLES.map((role) => {
    const u = new URL(url);
    u.username = role;
    u.password = encodeURIComponent(password);
    return u.toString();
  });
  const { connections, maxTenantsPerConnection, maxLifetimeSeconds, onAged, ...poolOptions } = options;
  const lanes = urls.map((laneUrl, i) => {
    const open = (seat: number) =>
      openPool(laneUrl, {
        ...poolOptions,
        max: 1,
        // The lane replaces its connections itself, so it knows when and can say whom they served.
        maxLifetimeSeconds: 0,
        idleTimeoutSeconds: 0,
        name: `${options.name ?? 'app'}:${RUNTIME_ROLES[i]}:${seat}`,
      });
    const renewal =
      maxTenantsPerConnection || maxLifetimeSeconds
        ? {
            maxTenants: maxTenantsPerConnection || undefined,
            maxAgeMs: maxLifetimeSeconds ? maxLifetimeSeconds * 1000 : undefined,
            open,
            onAged,
          }
        : undefined;
    return new Lane(
      Array.from({ length: connections }, (_, seat) => open(seat)),
      HOME_WAIT_MS,
      renewal,
    );
  });
  return new RuntimeLanes(lanes, urls);
}
