/**
 * Tenant API keys: issued by an admin, shown once, stored as a SHA-256 hash. A data-plane
 * request's tenant comes from its key alone. An answer is cached for KEY_CACHE_TTL_MS:
 * revocation and suspension reach other instances within that, and this instance at
 * once (it forgets its cache when it makes such a change).
 *
 * @example
 * const { key } = await keys.issue(tenantId, { name: 'trading-engine' }, who);
 * const tenant = await keys.authenticate(key); // TenantContext, or throws 401/403
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Sql } from '../db/connect.ts';
import type { TenantContext } from '../db/with-tenant.ts';
import { AppError, notFound } from '../errors.ts';
import type { RowOf } from '../db/rows.ts';
import type { apiKeys } from '../db/schema.ts';
import { isUuid } from '../ids.ts';
import { type PlanName, tenantContext } from './plans.ts';
import type { Actor, TenantService } from './service.ts';
import { AccessWatch, bumpAccessVersion } from './access-watch.ts';

export type ApiKeyView = {
  id: string;
  name: string | null;
  prefix: string;
  createdAt: string;
  revokedAt: string | null;
};

const KEY_PATTERN = /^tf_[A-Za-z0-9_-]{40}$/;
/** Well inside the promised "revocation takes effect within one second". */
export const KEY_CACHE_TTL_MS = 500;
/** While the access version (access-watch.ts) confirms it: nothing that changes a key's answer happened since. */
export const KEY_CACHE_CONFIRMED_TTL_MS = 60_000;
/** How recent the access version's last read must be for the longer lifetime to hold. */
const CONFIRMED_WITHIN_MS = 1_000;
const KEY_CACHE_MAX = 10_000;
const hash = (key: string) => createHash('sha256').update(key).digest('hex');

export class ApiKeyService {
  /** key hash -> the tenant, or the error to answer, as read at `at` with access version `version`. */
  readonly #cache = new Map<string, { answer: TenantContext | AppError; at: number; version: string }>();
  readonly #watch: AccessWatch;

  constructor(
    private readonly sql: Sql,
    private readonly tenants: TenantService,
  ) {
    tenants.onAccessChange(() => this.#cache.clear());
    this.#watch = new AccessWatch(sql);
  }

  /** Reads the access version in the background, so cached keys can live longer (see access-watch.ts). */
  watchAccess(): { stop: () => void } {
    this.#watch.start();
    return { stop: () => this.#watch.stop() };
  }

  async issue(idOrSlug: string, options: { name?: string }, who: Actor): Promise<ApiKeyView & { key: string }> {
    const tenant = await this.tenants.get(idOrSlug);
    if (tenant.status !== 'active') {
      throw new AppError(
        409,
        'tenant_not_active',
        'Tenant is not active',
        `tenant ${tenant.slug} is ${tenant.status}; keys are issued to active tenants only`,
      );
    }
    const key = `tf_${randomBytes(30).toString('base64url')}`;
    const prefix = key.slice(0, 11);
    const [row] = await this.sql<KeyRow[]>`
      with k as (
        insert into platform.api_keys (tenant_id, name, prefix, key_hash)
        values (${tenant.id}, ${options.name ?? null}, ${prefix}, ${hash(key)}) returning *
      ), a as (
        insert into platform.audit_log (actor, action, tenant_id, outcome, request_id, detail)
        select ${who.actor}, 'api_key.issue', ${tenant.id}, 'succeeded', ${who.requestId ?? null}, jsonb_build_object('keyId', id, 'prefix', prefix) from k
      )
      select * from k`;
    this.#cache.clear(); // a cached "unknown key" must not outlive the key's creation
    return { ...toView(row!), key };
  }

  async list(idOrSlug: string): Promise<ApiKeyView[]> {
    const tenant = await this.tenants.get(idOrSlug);
    const rows = await this.sql<
      KeyRow[]
    >`select * from platform.api_keys where tenant_id = ${tenant.id} order by created_at, id`;
    return rows.map(toView);
  }

  async revoke(idOrSlug: string, keyId: string, who: Actor): Promise<void> {
    const tenant = await this.tenants.get(idOrSlug);
    const row = await this.sql.begin(async (tx) => {
      const [revoked] = await tx`
        with k as (
          update platform.api_keys set revoked_at = coalesce(revoked_at, now())
          where id = ${isUuid(keyId) ? keyId : null} and tenant_id = ${tenant.id} returning id
        ), a as (
          insert into platform.audit_log (actor, action, tenant_id, outcome, request_id, detail)
          select ${who.actor}, 'api_key.revoke', ${tenant.id}, 'succeeded', ${who.requestId ?? null}, jsonb_build_object('keyId', id) from k
        )
        select id from k`;
      if (revoked) await bumpAccessVersion(tx);
      return revoked;
    });
    if (!row) throw notFound('api_key', keyId);
    this.#cache.clear();
  }

  /** The tenant a key belongs to; 401 for an unknown or revoked key, 403 for a tenant that may not work. */
  async authenticate(key: string): Promise<TenantContext> {
    if (!KEY_PATTERN.test(key)) throw invalidKey();
    const keyHash = hash(key);
    let cached = this.#cache.get(keyHash);
    if (!cached || !this.#fresh(cached)) {
      const at = Date.now();
      cached = { ...(await this.#lookup(keyHash)), at };
      if (this.#cache.size >= KEY_CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(keyHash, cached);
    }
    if (cached.answer instanceof AppError) throw cached.answer;
    return cached.answer;
  }

  #fresh(entry: { at: number; version: string }): boolean {
    const age = Date.now() - entry.at;
    if (age < KEY_CACHE_TTL_MS) return true;
    // Read with the version last seen, which was read within the second: nothing changed since.
    return (
      age < KEY_CACHE_CONFIRMED_TTL_MS &&
      entry.version === this.#watch.version &&
      this.#watch.confirmedWithin(CONFIRMED_WITHIN_MS)
    );
  }

  /** The key's answer, with the access version read in the same statement (one snapshot). */
  async #lookup(keyHash: string): Promise<{ answer: TenantContext | AppError; version: string }> {
    const [row] = await this.sql<
      { version: string; id: string | null; schema_name: string; role_name: string; status: string; plan: PlanName }[]
    >`
      select a.version::text as version, t.id, t.schema_name, t.role_name, t.status, t.plan
      from platform.access_version a
      left join platform.api_keys k on k.key_hash = ${keyHash} and k.revoked_at is null
      left join platform.tenants t on t.id = k.tenant_id`;
    return { answer: answerFor(row), version: row?.version ?? 'none' };
  }
}

function answerFor(
  row: { id: string | null; schema_name: string; role_name: string; status: string; plan: PlanName } | undefined,
): TenantContext | AppError {
  if (!row?.id) return invalidKey();
  if (row.status === 'suspended')
    return new AppError(
      403,
      'tenant_suspended',
      'Tenant suspended',
      'this tenant is suspended; contact the platform operator',
    );
  if (row.status !== 'active')
    return new AppError(403, 'tenant_deleted', 'Tenant deleted', 'this tenant has been deleted');
  return tenantContext({ ...row, id: row.id });
}

const invalidKey = () =>
  new AppError(
    401,
    'invalid_api_key',
    'Invalid API key',
    'send a valid tenant API key as "Authorization: Bearer <key>"',
  );

type KeyRow = Pick<RowOf<typeof apiKeys>, 'id' | 'name' | 'prefix' | 'created_at' | 'revoked_at'>;

function toView(row: KeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}
