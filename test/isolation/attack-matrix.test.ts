/**
 * The attack matrix, database level: roles x objects x commands, each cell with the
 * outcome the isolation model promises (README, "Isolation model").
 *
 * Roles: tenant A and tenant B, each through a login of its own that holds its tenant
 * role and nothing else (the tenant's direct credentials, with its tenant setting set
 * as a tenant's tools would), and tenant A's runtime lane role on its pool with neither
 * SET ROLE nor a tenant setting. Every cell runs in a transaction that is rolled back, so
 * cells are independent and the data stays as seeded.
 *
 * Outcomes: `own` = succeeds and every row it returns is the actor's tenant's (never
 * empty); `none` = succeeds with no rows; `ok` = succeeds (no rows to look at);
 * `denied` = 42501; `unsupported` = 0A000 (COPY FROM into a table with RLS).
 *
 * A denial is pinned to its layer and object: another tenant's objects and the control
 * plane are refused at the schema ("permission denied for schema <name>"), own-table
 * TRUNCATE by the table grant, own DDL by ownership, SET ROLE by role membership. A
 * leaked schema USAGE would turn those into table-level or RLS refusals and fail the
 * cell. Control-plane statements are also run as the superuser in a rolled-back
 * transaction first (a positive control): a misspelt table or column cannot pass as
 * "denied".
 */
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/connect.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { chunkOf, loginFor, newTenant, seed, SEED_TIME, type Login, type TestTenant } from './support.ts';

type Outcome = 'own' | 'none' | 'ok' | 'denied' | 'unsupported';
type Command =
  | 'SELECT'
  | 'INSERT'
  | 'UPDATE'
  | 'DELETE'
  | 'TRUNCATE'
  | 'COPY TO'
  | 'COPY FROM'
  | 'DDL'
  | 'SET ROLE'
  | 'RESET ROLE'
  | 'set_config';
type ObjectKind = 'table' | 'hypertable' | 'chunk' | 'control plane' | 'functions';
type Whose = 'own' | 'other' | null;

const COMMANDS: Command[] = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'TRUNCATE',
  'COPY TO',
  'COPY FROM',
  'DDL',
  'SET ROLE',
  'RESET ROLE',
  'set_config',
];

/** Expected outcomes for a tenant's login, by object and command (the columns are COMMANDS). */
const TENANT_EXPECTED: [Whose, ObjectKind, Outcome[]][] = [
  //                       SELECT  INSERT UPDATE DELETE TRUNCATE  COPY TO  COPY FROM      DDL       SET ROLE  RESET ROLE set_config
  ['own', 'table', ['own', 'own', 'own', 'own', 'denied', 'own', 'unsupported', 'denied', 'own', 'own', 'none']],
  // COPY hypertable TO copies the (empty) parent only, as for any inheritance parent.
  ['own', 'hypertable', ['own', 'own', 'own', 'own', 'denied', 'none', 'unsupported', 'denied', 'own', 'own', 'none']],
  // Chunks have no RLS (TimescaleDB refuses it): the tenant reads and writes its own
  // chunk directly, whatever the tenant setting says. Only its own rows live there.
  ['own', 'chunk', ['own', 'own', 'own', 'own', 'denied', 'own', 'ok', 'denied', 'own', 'own', 'own']],
  [
    'other',
    'table',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied'],
  ],
  [
    'other',
    'hypertable',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied'],
  ],
  [
    'other',
    'chunk',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied'],
  ],
  [
    null,
    'control plane',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied'],
  ],
];

/** The runtime role, on its own (no SET ROLE, no setting), against tenant A's objects. */
const RUNTIME_EXPECTED: [Whose, ObjectKind, Outcome[]][] = [
  //                       SELECT    INSERT    UPDATE    DELETE    TRUNCATE  COPY TO   COPY FROM DDL       SET ROLE  RESET ROLE set_config
  // SET ROLE into an active tenant is how the service works; without the tenant
  // setting the policies show nothing, except on chunks, which have no RLS.
  [
    'other',
    'table',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'none', 'denied', 'denied'],
  ],
  [
    'other',
    'hypertable',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'none', 'denied', 'denied'],
  ],
  [
    'other',
    'chunk',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'own', 'denied', 'denied'],
  ],
  [
    null,
    'control plane',
    ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied'],
  ],
];

/** Functions: calling TimescaleDB's drop_chunks and the template's trigger function, and creating functions. */
const FUNCTION_CELLS: [Command, string, Outcome][] = [
  ['SELECT', 'drop_chunks on own hypertable', 'denied'],
  ['SELECT', "drop_chunks on other's hypertable", 'denied'],
  ['SELECT', "the template's trigger function", 'denied'],
  ['DDL', 'create function in own schema', 'denied'],
  ['DDL', 'create function in public', 'denied'],
  ['DDL', 'create function in extensions', 'denied'],
];

let t: TestPlatform;
let a: TestTenant;
let b: TestTenant;
let logins: Login[] = [];
const chunks = new Map<string, string>();
const portfolios = new Map<string, string>();

type Actor = { name: string; sql: () => Sql; own: () => TestTenant; other: () => TestTenant; setting: boolean };
const ACTORS: Record<'A' | 'B' | 'runtime', Actor> = {
  A: { name: 'tenant A', sql: () => logins[0]!.sql, own: () => a, other: () => b, setting: true },
  B: { name: 'tenant B', sql: () => logins[1]!.sql, own: () => b, other: () => a, setting: true },
  // The runtime role has no tenant: "own" is the tenant it can SET ROLE into (A, on A's lane).
  runtime: {
    name: 'runtime lane of A',
    sql: () => t.app.forTenant(a.role),
    own: () => a,
    other: () => a,
    setting: false,
  },
};

beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off' } });
  a = await newTenant(t, 'matrix-a');
  b = await newTenant(t, 'matrix-b');
  for (const tenant of [a, b]) {
    await seed(t, tenant);
    chunks.set(tenant.id, (await chunkOf(t, tenant)).qualified);
    const [p] = await t.su`select id from ${t.su(tenant.schema)}.portfolios limit 1`;
    portfolios.set(tenant.id, p!.id);
  }
  logins = [await loginFor(t, a), await loginFor(t, b)];
});
afterAll(async () => {
  for (const login of logins) await login.drop();
  await t?.close();
});

type Target = { kind: ObjectKind; tenant: TestTenant | null };

/** The statement a command runs against an object (without what SET ROLE etc. do first). */
function statement(command: Command, target: Target): string {
  const { kind, tenant } = target;
  if (kind === 'control plane') {
    return {
      SELECT: 'select id as tenant_id from platform.tenants',
      INSERT: `insert into platform.tenants (slug, name, plan, schema_name, role_name, template_version) values ('x', 'x', 'free', 'tenant_00', 'tenant_00_role', 'v') returning id as tenant_id`,
      UPDATE: 'update platform.tenants set name = name returning id as tenant_id',
      DELETE: 'delete from platform.audit_log returning tenant_id',
      TRUNCATE: 'truncate platform.tenants cascade',
      'COPY TO': 'copy platform.tenants (id) to stdout',
      'COPY FROM': 'copy platform.tenants (slug) from stdin',
      DDL: 'alter table platform.tenants add column pwned int',
    }[command as 'SELECT'];
  }
  const schema = `"${tenant!.schema}"`;
  const table =
    kind === 'table' ? `${schema}.portfolios` : kind === 'hypertable' ? `${schema}.trades` : chunks.get(tenant!.id)!;
  const timeSeries = kind !== 'table';
  return {
    SELECT: `select tenant_id from ${table}`,
    INSERT: timeSeries
      ? `insert into ${table} (portfolio_id, symbol, side, quantity, price, executed_at) values ('${portfolios.get(tenant!.id)}', 'ZZZ', 'buy', 1, 1, '${SEED_TIME}') returning tenant_id`
      : `insert into ${table} (name) values ('attack') returning tenant_id`,
    UPDATE: `update ${table} set ${timeSeries ? 'fee = fee' : 'name = name'} returning tenant_id`,
    DELETE: `delete from ${table} returning tenant_id`,
    TRUNCATE: `truncate ${table} cascade`,
    'COPY TO': `copy ${table} (tenant_id) to stdout`,
    'COPY FROM': `copy ${table} (${timeSeries ? 'symbol' : 'name'}) from stdin`,
    DDL: `alter table ${table} add column pwned int`,
  }[command as 'SELECT'];
}

/** What runs before the SELECT for the session commands. */
function prelude(command: Command, target: Target, actor: Actor): string | undefined {
  if (command === 'SET ROLE') return target.tenant ? `set role "${target.tenant.role}"` : 'set role tf_owner';
  if (command === 'RESET ROLE') return 'reset role';
  // Spoofing: claim the other tenant's id (the runtime role: the tenant whose objects it tries).
  if (command === 'set_config')
    return `select set_config('app.current_tenant_id', '${actor.setting ? actor.other().id : a.id}', false)`;
  return undefined;
}

function functionStatement(cell: string, actor: Actor): string {
  const own = actor.own();
  return {
    'drop_chunks on own hypertable': `select extensions.drop_chunks('"${own.schema}".trades'::regclass, older_than => now() + interval '100 years')`,
    "drop_chunks on other's hypertable": `select extensions.drop_chunks('"${actor.other().schema}".trades'::regclass, older_than => now() + interval '100 years')`,
    "the template's trigger function": 'select tf_template.touch_updated_at()',
    'create function in own schema': `create function "${own.schema}".pwned() returns int language sql as 'select 1'`,
    'create function in public': `create function public.pwned() returns int language sql as 'select 1'`,
    'create function in extensions': `create function extensions.pwned() returns int language sql as 'select 1'`,
  }[cell]!;
}

const ROLLBACK = new Error('rollback');

/** Runs `steps` as the actor in a transaction that is always rolled back; classifies what happened. */
async function attempt(
  actor: Actor,
  steps: string[],
): Promise<{ outcome: Outcome | string; tenantIds: string[]; reason?: string }> {
  let tenantIds: string[] | undefined;
  try {
    await actor.sql().begin(async (tx) => {
      if (actor.setting) await tx`select set_config('app.current_tenant_id', ${actor.own().id}, true)`;
      for (const step of steps.slice(0, -1)) await tx.unsafe(step);
      const last = steps.at(-1)!;
      if (/^copy .* to stdout$/.test(last)) {
        const stream = await tx.unsafe(last).readable();
        let text = '';
        for await (const chunk of stream) text += chunk;
        tenantIds = text.split('\n').filter(Boolean);
      } else if (/^copy .* from stdin$/.test(last)) {
        const stream = await tx.unsafe(last).writable();
        stream.end();
        await finished(stream);
      } else {
        const rows = await tx.unsafe(last);
        tenantIds = /\breturning\b|^select tenant_id|^select id as tenant_id/.test(last)
          ? rows.map((r) => String(r.tenant_id))
          : undefined;
      }
      throw ROLLBACK;
    });
  } catch (err) {
    if (err !== ROLLBACK) {
      const e = err as { code?: string; message: string };
      if (e.code === '42501') return { outcome: 'denied', tenantIds: [], reason: e.message };
      if (e.code === '0A000') return { outcome: 'unsupported', tenantIds: [] };
      return { outcome: `error ${e.code}: ${e.message}`, tenantIds: [] };
    }
  }
  if (tenantIds === undefined) return { outcome: 'ok', tenantIds: [] };
  if (tenantIds.length === 0) return { outcome: 'none', tenantIds };
  return {
    outcome: tenantIds.every((id) => id === actor.own().id) ? 'own' : `rows of another tenant: ${tenantIds.join(', ')}`,
    tenantIds,
  };
}

/** The table name a denial names (a chunk's own name; a control-plane statement's table). */
function tableName(target: Target): string {
  if (target.kind === 'table') return 'portfolios';
  if (target.kind === 'hypertable') return 'trades';
  return chunks.get(target.tenant!.id)!.split('.')[1]!.replaceAll('"', '');
}

/**
 * Why a cell must be refused: the schema for anything outside the actor's own schema
 * (the README's first line of defence), the table grant for TRUNCATE, ownership for DDL,
 * membership for SET ROLE. Never RLS, never a table grant on another tenant's table.
 */
function expectedDenial(cell: Cell, target: Target, _actor: Actor): string {
  const setRole = (role: string) => `permission denied to set role "${role}"`;
  if (cell.kind === 'control plane') {
    if (cell.command === 'SET ROLE') return setRole('tf_owner');
    return 'permission denied for schema platform';
  }
  const schema = target.tenant!.schema;
  if (cell.actor === 'runtime') {
    // Lane roles are NOINHERIT: without SET ROLE they have no tenant schema's USAGE.
    return `permission denied for schema ${schema}`;
  }
  if (cell.whose === 'other') {
    if (cell.command === 'SET ROLE') return setRole(target.tenant!.role);
    return `permission denied for schema ${schema}`;
  }
  if (cell.command === 'TRUNCATE') return `permission denied for table ${tableName(target)}`;
  if (cell.command === 'DDL') return `must be owner of table ${tableName(target)}`;
  throw new Error(`no denial expected for ${cell.actor} ${cell.command} on ${cell.object}`);
}

function expectedFunctionDenial(what: string, actor: Actor): string {
  // The regclass cast resolves the hypertable before the call: a schema the actor cannot
  // use is refused there (always, for the NOINHERIT runtime role); its own, at the function.
  const ownSchemaUsable = actor.setting;
  return {
    'drop_chunks on own hypertable': ownSchemaUsable
      ? 'permission denied for function drop_chunks'
      : `permission denied for schema ${actor.own().schema}`,
    "drop_chunks on other's hypertable": `permission denied for schema ${actor.other().schema}`,
    "the template's trigger function": 'permission denied for schema tf_template',
    'create function in own schema': `permission denied for schema ${actor.own().schema}`,
    'create function in public': 'permission denied for schema public',
    'create function in extensions': 'permission denied for schema extensions',
  }[what]!;
}

type Cell = {
  actor: keyof typeof ACTORS;
  whose: Whose;
  kind: ObjectKind;
  object: string;
  command: Command;
  expected: Outcome;
};

function cells(actor: keyof typeof ACTORS, table: [Whose, ObjectKind, Outcome[]][]): Cell[] {
  return table.flatMap(([whose, kind, outcomes]) =>
    COMMANDS.map((command, i) => ({
      actor,
      whose,
      kind,
      command,
      object: whose
        ? `${actor === 'runtime' ? "tenant A's" : whose === 'own' ? 'own' : "other tenant's"} ${kind}`
        : kind,
      expected: outcomes[i]!,
    })),
  );
}

/** The cell's object, once the tenants exist. */
function targetOf(cell: Cell): Target {
  const actor = ACTORS[cell.actor];
  return {
    kind: cell.kind,
    tenant: cell.whose === 'own' ? actor.own() : cell.whose === 'other' ? actor.other() : null,
  };
}

describe('attack matrix: roles x objects x commands', () => {
  const matrix = [
    ...cells('A', TENANT_EXPECTED),
    ...cells('B', TENANT_EXPECTED),
    ...cells('runtime', RUNTIME_EXPECTED),
  ];

  it.each(matrix)('$actor: $command on $object -> $expected', async (cell) => {
    const actor = ACTORS[cell.actor];
    const target = targetOf(cell);
    const before = prelude(cell.command, target, actor);
    const command = ['SET ROLE', 'RESET ROLE', 'set_config'].includes(cell.command) ? 'SELECT' : cell.command;
    const steps = [...(before ? [before] : []), statement(command, target)];
    const { outcome, reason } = await attempt(actor, steps);
    expect(outcome, steps.join('; ')).toBe(cell.expected);
    if (cell.expected === 'denied') expect(reason, steps.join('; ')).toBe(expectedDenial(cell, target, actor));
  });

  const controlPlane = [
    ...new Set(COMMANDS.map((c) => (['SET ROLE', 'RESET ROLE', 'set_config'].includes(c) ? 'SELECT' : c))),
  ];
  it.each(controlPlane)(
    'positive control: %s on the control plane is a valid statement (superuser, rolled back)',
    async (command) => {
      const sql = statement(command, { kind: 'control plane', tenant: null });
      const done = await t.su
        .begin(async (tx) => {
          if (/^copy .* to stdout$/.test(sql)) {
            for await (const _ of await tx.unsafe(sql).readable()); // drain
          } else if (/^copy .* from stdin$/.test(sql)) {
            const stream = await tx.unsafe(sql).writable();
            stream.end();
            await finished(stream);
          } else await tx.unsafe(sql);
          throw ROLLBACK;
        })
        .then(
          () => 'committed',
          (err) => (err === ROLLBACK ? 'valid' : `error ${err.code}: ${err.message}`),
        );
      expect(done, sql).toBe('valid');
    },
  );

  const functionCells = (['A', 'B', 'runtime'] as const).flatMap((actor) =>
    FUNCTION_CELLS.map(([command, what, expected]) => ({ actor, command, what, expected })),
  );
  it.each(functionCells)('$actor: $command functions ($what) -> $expected', async ({ actor, what, expected }) => {
    const { outcome, reason } = await attempt(ACTORS[actor], [functionStatement(what, ACTORS[actor])]);
    expect(outcome).toBe(expected);
    expect(reason).toBe(expectedFunctionDenial(what, ACTORS[actor]));
  });

  it('left every tenant with exactly its seeded rows', async () => {
    for (const tenant of [a, b]) {
      const [counts] = await t.su`
        select (select count(*)::int from ${t.su(tenant.schema)}.portfolios) as portfolios,
               (select count(*)::int from ${t.su(tenant.schema)}.trades where tenant_id = ${tenant.id}) as trades,
               (select count(*)::int from ${t.su(tenant.schema)}.trades) as all_trades`;
      expect(counts).toEqual({ portfolios: 2, trades: 2, all_trades: 2 });
    }
  });
});
