/**
 * The service's runtime connections, one small pool per lane (db/roles.ts): each pool
 * logs in as its lane's role, which can act only as the tenants of that lane. A tenant's
 * requests therefore always go to the same few connections, and each backend opens the
 * tables (and fills its catalog caches with them) of one lane's tenants only.
 *
 * @example
 * const lanes = openRuntimeLanes(appUrl, password, { connections: 3, name: 'app' });
 * await withTenant(lanes, tenant, (tx) => tx`select 1`);   // on the tenant's lane
 */
import { openPool, type PoolOptions, type Sql } from './connect.ts';
import { runtimeRoleOf } from './names.ts';
import { RUNTIME_ROLES } from './roles.ts';

export class RuntimeLanes {
  readonly #byRole: Map<string, Sql>;

  /** `pools[i]` logs in as lane i's role at `urls[i]`. */
  constructor(
    readonly pools: readonly Sql[],
    readonly urls: readonly string[],
  ) {
    if (pools.length !== RUNTIME_ROLES.length || urls.length !== RUNTIME_ROLES.length)
      throw new Error(`expected ${RUNTIME_ROLES.length} lane pools and URLs, got ${pools.length} and ${urls.length}`);
    this.#byRole = new Map(RUNTIME_ROLES.map((role, lane) => [role, pools[lane]!]));
  }

  /** The pool whose role may act as this tenant (`tenantName`: its schema or role name). */
  forTenant(tenantName: string): Sql {
    return this.#byRole.get(runtimeRoleOf(tenantName))!;
  }
}

/**
 * One pool per lane, each logging in as its lane's role with `password` at `url`'s
 * host, port and database (`url`'s own user, if any, is replaced).
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
  const pools = urls.map((laneUrl, lane) =>
    openPool(laneUrl, {
      ...options,
      max: options.connections,
      name: `${options.name ?? 'app'}:${RUNTIME_ROLES[lane]}`,
    }),
  );
  return new RuntimeLanes(pools, urls);
}
