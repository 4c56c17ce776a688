/**
 * Direct database logins for a tenant's own tools (psql, BI, a trading engine): one
 * login role per tenant, a member of the tenant role only, with the plan's connection
 * limit, statement timeout, temp-file limit and idle-transaction bound, and search_path
 * and tenant setting pinned to the tenant (see provisioning/login-settings.ts).
 * The password is generated here, sent to PostgreSQL only as a SCRAM-SHA-256 verifier
 * (never in plain text, so it cannot show up in server logs) and returned once.
 *
 * @example
 * const login = await credentials.rotate('acme', who); // { username, password, url, ... }
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { Sql } from '../db/connect.ts';
import { AppError } from '../errors.ts';
import { tenantLoginName } from '../db/names.ts';
import { asOwner, terminateSessions, upsertTenantLogin } from '../provisioning/tenant-roles.ts';
import { PLANS, type PlanName } from './plans.ts';
import type { Actor, TenantService } from './service.ts';

export type Credentials = {
  username: string;
  password: string;
  host: string;
  port: number;
  database: string;
  url: string;
  connectionLimit: number;
  statementTimeoutMs: number;
  rotatedAt: string;
};

export class CredentialService {
  constructor(
    private readonly sql: Sql,
    private readonly tenants: TenantService,
    /** Where tenants connect: the runtime role's server and database. */
    private readonly server: { host: string; port: number; database: string },
  ) {}

  /** Creates the tenant's login, or gives it a new password (the old one stops working at once). */
  async rotate(idOrSlug: string, who: Actor): Promise<Credentials> {
    const tenant = await this.tenants.get(idOrSlug);
    if (tenant.status !== 'active') {
      throw new AppError(
        409,
        'tenant_not_active',
        'Tenant is not active',
        `tenant ${tenant.slug} is ${tenant.status}; logins are issued to active tenants only`,
      );
    }
    const plan = PLANS[tenant.plan as PlanName];
    const username = tenantLoginName(tenant.schema);
    const password = randomBytes(24).toString('base64url');
    const [row] = await this.sql.begin(async (tx) => {
      const [exists] = await tx`select 1 from pg_roles where rolname = ${username}`;
      const tenantForLogin = { id: tenant.id, schema: tenant.schema, plan: tenant.plan as PlanName };
      await tx.unsafe(
        asOwner(
          upsertTenantLogin(tenantForLogin, {
            exists: Boolean(exists),
            verifier: scramVerifier(password),
            connectionLimit: plan.connectionLimit,
          }),
        ),
      );
      // Sessions opened with the old password end now.
      await terminateSessions(tx, username);
      return tx<{ rotated_at: Date }[]>`
        with l as (
          insert into platform.tenant_logins (tenant_id, role_name) values (${tenant.id}, ${username})
          on conflict (tenant_id) do update set rotated_at = now() returning rotated_at
        ), a as (
          insert into platform.audit_log (actor, action, tenant_id, outcome, request_id, detail)
          values (${who.actor}, ${exists ? 'login.rotate' : 'login.create'}, ${tenant.id}, 'succeeded', ${who.requestId ?? null}, ${tx.json({ username })})
        )
        select rotated_at from l`;
    });
    const { host, port, database } = this.server;
    return {
      username,
      password,
      host,
      port,
      database,
      url: `postgres://${username}:${password}@${host}:${port}/${database}`,
      connectionLimit: plan.connectionLimit,
      statementTimeoutMs: plan.statementTimeoutMs,
      rotatedAt: row!.rotated_at.toISOString(),
    };
  }
}

/** The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802 / RFC 7677). */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
