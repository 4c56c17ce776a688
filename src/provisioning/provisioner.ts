/**
 * Creates, and drops, a tenant's schema and role by running the cached clone plan
 * inside the caller's transaction: the tenant exists completely or not at all. The role
 * statements themselves are in tenant-roles.ts.
 *
 * @example
 * const provisioner = new Provisioner(sql, secret);
 * await sql.begin((tx) => provisioner.provision(tx, tenantId));
 */
import type { Sql, Tx } from '../db/connect.ts';
import { LOCKS, ROLE_DDL_LOCK } from '../db/locks.ts';
import { ROLES } from '../db/roles.ts';
import { templateVersionOf } from '../migrations/files.ts';
import { currentTemplateVersion } from '../migrations/template.ts';
import { compileClonePlan, renderClonePlan, type ClonePlan } from './clone-plan.ts';
import { pinLoginSettings, type LoginOwner } from './login-settings.ts';
import { asOwner, dropTenantRoles, setTenantAccess, terminateSessions } from './tenant-roles.ts';
import { assertTenantSchemaName, tenantLoginName, tenantRoleName, tenantSchemaName } from '../db/names.ts';

export type ProvisionedTenant = {
  schema: string;
  role: string;
  templateVersion: string;
  migrations: { name: string; checksum: string }[];
};

export type ProvisionerOptions = {
  /** Rewrites the rendered statements before they run: used by tests to inject faults at step k. */
  interceptStatements?: (statements: string[]) => string[];
};

export type ProvisionOptions = {
  /** Fills the new tables (a restore) inside the transaction, before the role, policies and grants exist. */
  load?: (tx: Tx, tenant: { id: string; schema: string; role: string }) => Promise<void>;
  /**
   * Grant the runtime role membership in the new tenant role (default true). A warm-pool
   * tenant is made without it: nothing can reach it until a claim grants it.
   */
  runtimeAccess?: boolean;
};

/** The clone plan step that lets the runtime role act as the tenant (left out for pooled tenants). */
export const RUNTIME_GRANT_STEP = 'grant role to runtime';

export class StaleTemplateError extends Error {
  override name = 'StaleTemplateError';
}

export class Provisioner {
  #plan: ClonePlan | undefined;
  #compiling: Promise<ClonePlan> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly secret: string,
    private readonly options: ProvisionerOptions = {},
  ) {}

  /** The clone plan for the template's current version, compiled once per version. */
  async plan(): Promise<ClonePlan> {
    const version = await currentTemplateVersion(this.sql);
    if (this.#plan?.templateVersion === version) return this.#plan;
    this.#compiling ??= compileClonePlan(this.sql, version).finally(() => (this.#compiling = undefined));
    this.#plan = await this.#compiling;
    return this.#plan;
  }

  /** Schema and role a tenant id maps to. */
  namesFor(tenantId: string): { schema: string; role: string } {
    const schema = tenantSchemaName(tenantId, this.secret);
    return { schema, role: tenantRoleName(schema) };
  }

  /**
   * Clones the template for one tenant inside `tx`, with a plan from `plan()` (fetched
   * before the transaction, as compiling needs a connection of its own). The whole plan goes to the server as
   * one multi-statement query: one round trip, and any failing statement aborts it all.
   */
  async provision(
    tx: Tx,
    tenantId: string,
    plan: ClonePlan,
    options: ProvisionOptions = {},
  ): Promise<ProvisionedTenant> {
    const names = this.namesFor(tenantId);
    const rendered = renderClonePlan(plan, names).filter(
      (_, i) => options.runtimeAccess !== false || plan.steps[i]!.name !== RUNTIME_GRANT_STEP,
    );
    // With a load step, the tables are filled before the role part of the plan, which
    // holds the role-DDL lock until commit: a long load must not stall other provisionings.
    const split = options.load ? plan.steps.findIndex((s) => s.sql === ROLE_DDL_LOCK) : -1;
    const before = split >= 0 ? rendered.slice(0, split) : rendered;
    const after = split >= 0 ? rendered.slice(split) : [];
    let statements = [`set local role ${ROLES.owner}`, ...before, 'reset role'];
    if (this.options.interceptStatements) statements = this.options.interceptStatements(statements);
    // Pipelined (one round trip): a template migration takes this lock exclusively, so
    // holding it shared pins the version the plan was compiled for. If the version moved,
    // the error below rolls the whole transaction back, plan included. The lock is its own
    // statement: a statement's snapshot is taken before it waits, so reading the ledger in
    // the same statement could see the version from before the wait.
    const [, migrations] = await Promise.all([
      tx`select pg_advisory_xact_lock_shared(hashtext(${LOCKS.template}))`,
      tx<{ name: string; checksum: string }[]>`select name, checksum from platform.template_migrations order by name`,
      tx.unsafe(statements.join(';\n')),
    ]);
    if (options.load) {
      await options.load(tx, { id: tenantId, ...names });
      if (after.length) await tx.unsafe(asOwner(after));
    }
    if (templateVersionOf(migrations) !== plan.templateVersion)
      throw new StaleTemplateError('the template changed while provisioning; retry');

    // Read the names back from the catalog rather than trusting what we meant to create.
    const [created] = await tx<{ schema: string | null; role: string | null }[]>`
      select (select nspname from pg_namespace where nspname = ${names.schema}) as schema,
             (select rolname from pg_roles where rolname = ${names.role}) as role`;
    if (created?.schema !== names.schema || created?.role !== names.role) {
      throw new Error(`provisioning did not create ${names.schema}/${names.role}`);
    }
    return { ...names, templateVersion: plan.templateVersion, migrations };
  }

  /**
   * Drops a tenant's schema (tables, chunks), role and direct login inside `tx`. Nothing
   * a tenant did can block it: its login's sessions end first (waiting for them to go),
   * and `DROP OWNED BY` removes what ties the roles to other objects (default privileges
   * a login set anywhere, grants other tenants' logins made to this role), which would
   * otherwise make `DROP ROLE` fail. The owner joins both roles for that, inside this
   * transaction only: the roles are gone at commit.
   */
  async drop(tx: Tx, names: { schema: string; role: string }): Promise<void> {
    await terminateSessions(tx, tenantLoginName(assertTenantSchemaName(names.schema)));
    await tx.unsafe(asOwner(dropTenantRoles(names)));
  }

  /** Pins the login's settings again (after a plan change), if the tenant has a login. */
  async repinLogin(tx: Tx, tenant: LoginOwner): Promise<void> {
    const login = tenantLoginName(tenant.schema);
    const statements = pinLoginSettings(login, tenant).map((s) => `execute ${literal(s)};`);
    await tx.unsafe(
      asOwner([
        `do $$ begin if exists (select from pg_roles where rolname = ${literal(login)}) then ${statements.join(' ')} end if; end $$`,
      ]),
    );
  }

  /**
   * Gives or takes every way into a tenant at once (suspension, deletion): the runtime
   * role's membership, and the direct login's LOGIN attribute and open sessions.
   */
  async setAccess(tx: Tx, names: { schema: string; role: string }, allowed: boolean): Promise<void> {
    await tx.unsafe(asOwner(setTenantAccess(names, allowed)));
    if (!allowed) await terminateSessions(tx, tenantLoginName(names.schema));
  }
}

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
