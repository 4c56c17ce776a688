/**
 * The settings pinned on a tenant's direct login (ALTER ROLE ... SET), in the one form
 * both the credential service writes and the validator compares. A login may change
 * its own user-settable defaults (`ALTER ROLE current_user SET ...`), so these are
 * re-pinned on every rotation, checked by the validator (`role_settings`), and what a
 * login could lift at run time (statement timeout, idle transactions) is enforced from
 * outside by the login watchdog. `temp_file_limit` can be changed by superusers only,
 * so pinned, it holds.
 *
 * @example
 * const statements = pinLoginSettings('tenant_ab12_login', { id, schema: 'tenant_ab12', plan: 'pro' });
 */
import { EXTENSIONS_SCHEMA } from '../db/roles.ts';
import { PLANS, type PlanName } from '../tenants/plans.ts';

export type LoginOwner = { id: string; schema: string; plan: PlanName };

/** name -> value, exactly as pg_db_role_setting stores `name=value`. */
export function loginSettings(tenant: LoginOwner): Record<string, string> {
  const plan = PLANS[tenant.plan];
  return {
    search_path: `${tenant.schema}, ${EXTENSIONS_SCHEMA}`,
    statement_timeout: String(plan.statementTimeoutMs),
    idle_in_transaction_session_timeout: String(plan.idleInTransactionMs),
    temp_file_limit: String(plan.tempFileLimitKb),
    'app.current_tenant_id': tenant.id,
  };
}

/** `name=value` strings, sorted: what a clean login's setconfig holds. */
export function loginSettingStrings(tenant: LoginOwner): string[] {
  return Object.entries(loginSettings(tenant))
    .map(([k, v]) => `${k}=${v}`)
    .sort();
}

/** Statements (run as the owner role) that drop whatever a login set itself and pin ours. */
export function pinLoginSettings(login: string, tenant: LoginOwner): string[] {
  const role = `"${login.replaceAll('"', '""')}"`;
  return [
    `alter role ${role} reset all`,
    ...Object.entries(loginSettings(tenant)).map(([k, v]) =>
      // search_path is a list of names: one quoted literal would be one schema named "a, b".
      k === 'search_path'
        ? `alter role ${role} set search_path = "${tenant.schema}", ${EXTENSIONS_SCHEMA}`
        : `alter role ${role} set ${k} = '${v.replaceAll("'", "''")}'`,
    ),
  ];
}
