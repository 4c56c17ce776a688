/**
 * Tenant schema and role names: derived from the tenant id with a keyed hash, never
 * from user input, and validated again before any DDL uses them.
 *
 * @example
 * const schema = tenantSchemaName(tenantId, secret); // 'tenant_3f9c0a51d2e47b8c6a10'
 * const role = tenantRoleName(schema);               // 'tenant_3f9c0a51d2e47b8c6a10_role'
 */
import { createHmac } from 'node:crypto';
import { RUNTIME_LANES, runtimeRole, runtimeRoleSql } from './roles.ts';

/** 20 hex digits = 80 bits: collisions are negligible even at millions of tenants. */
const HEX_DIGITS = 20;
const SCHEMA_PATTERN = /^tenant_[0-9a-f]+$/;
const ROLE_PATTERN = /^tenant_[0-9a-f]+_role$/;
const LOGIN_PATTERN = /^tenant_[0-9a-f]+_login$/;
const MAX_IDENTIFIER_BYTES = 63;

export class InvalidTenantNameError extends Error {
  override name = 'InvalidTenantNameError';
}

export function tenantSchemaName(tenantId: string, secret: string): string {
  const hex = createHmac('sha256', secret).update(tenantId).digest('hex').slice(0, HEX_DIGITS);
  return assertTenantSchemaName(`tenant_${hex}`);
}

export function tenantRoleName(schema: string): string {
  return assertTenantRoleName(`${assertTenantSchemaName(schema)}_role`);
}

/**
 * The runtime role (lane, see db/roles.ts) that may act as a tenant: by the first hex
 * digit of its hashed name, so the schema, role and login name all give the same lane.
 */
export function runtimeRoleOf(tenantName: string): string {
  const digit = /^tenant_([0-9a-f])/.exec(tenantName)?.[1];
  if (!digit) throw new InvalidTenantNameError(`refusing tenant name ${JSON.stringify(tenantName)}: no lane for it`);
  return runtimeRole(Number.parseInt(digit, 16) % RUNTIME_LANES);
}

/** `runtimeRoleOf` in SQL, for `expr` (a text expression holding a tenant schema or role name). */
export const runtimeRoleOfSql = (expr: string) =>
  runtimeRoleSql(`('x' || substr(${expr}, 8, 1))::bit(4)::int % ${RUNTIME_LANES}`);

/** The tenant's direct database login (see tenants/credentials.ts). */
export function tenantLoginName(schema: string): string {
  const name = `${assertTenantSchemaName(schema)}_login`;
  if (!LOGIN_PATTERN.test(name) || Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES)
    throw new InvalidTenantNameError(`refusing tenant login name ${JSON.stringify(name)}`);
  return name;
}

export function assertTenantSchemaName(name: string): string {
  if (!SCHEMA_PATTERN.test(name) || Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new InvalidTenantNameError(
      `refusing tenant schema name ${JSON.stringify(name)}: must match ${SCHEMA_PATTERN} and fit 63 bytes`,
    );
  }
  return name;
}

export function assertTenantRoleName(name: string): string {
  if (!ROLE_PATTERN.test(name) || Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new InvalidTenantNameError(
      `refusing tenant role name ${JSON.stringify(name)}: must match ${ROLE_PATTERN} and fit 63 bytes`,
    );
  }
  return name;
}
