/**
 * Restores a backup into a tenant schema being provisioned, inside the provisioning
 * transaction: any failure (a missing object, a checksum or row count that does not
 * match the manifest, a column that changed) rolls back the schema, the role and the
 * registry row with it. Nothing half-restored is ever visible.
 *
 * Rows are loaded with binary `COPY FROM` as the owner. The template FORCEs row level
 * security, which subjects the owner too, and `COPY FROM` is refused under RLS: the load
 * lifts FORCE on the new tables (which no one else can see until commit) and sets it
 * back before the transaction ends. `tenant_id` is not in the backup: its column default
 * fills in the new tenant's id, set for this transaction only.
 *
 * A backup made at an older template version is loaded into the current structure when
 * the later template files only add things (assertReplayable says when).
 *
 * @example
 * const located = await locateBackup(control, store, backupId);
 * assertTemplateCompatible(located.manifest, await templateMigrations(control));
 * await tenants.create(input, who, undefined, { load: (tx, t) => loadBackup(tx, store, located, t) });
 */
import { digestTap } from './digest-tap.ts';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql, Tx } from '../db/connect.ts';
import { ROLES } from '../db/roles.ts';
import { AppError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { loadedPlan, type TenantPlan } from '../migrations/tenant-plan.ts';
import { assertTenantSchemaName } from '../provisioning/names.ts';
import { CopyRowCounter } from './copy-rows.ts';
import { decompressor, isDamagedObjectError } from './compression.ts';
import { backupFolder, indexKey, manifestSchema, READABLE_FORMATS, type Manifest } from './manifest.ts';
import { tableLayout } from './snapshot.ts';
import type { BackupStore } from './store.ts';

export type LocatedBackup = { backupId: string; tenantId: string; manifest: Manifest; folder: string };

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

const backupNotFound = (id: string, field: string) =>
  new AppError(404, 'backup_not_found', 'Backup not found', `no backup ${JSON.stringify(id)}`, { field });

const incomplete = (id: string, why: string, field = 'restoreFrom.backupId') =>
  new AppError(409, 'backup_incomplete', 'Backup is incomplete', `backup ${id} cannot be restored: ${why}`, { field });

/**
 * A backup's manifest, found through this database's registry or, failing that, the
 * store's index (a backup made elsewhere). `field` names the request field in errors.
 */
export async function locateBackup(
  sql: Sql,
  store: BackupStore,
  backupId: string,
  field = 'restoreFrom.backupId',
): Promise<LocatedBackup> {
  if (!isUuid(backupId)) throw backupNotFound(backupId, field);
  const [row] = await sql<
    { tenant_id: string; status: string }[]
  >`select tenant_id, status from platform.backups where id = ${backupId}`;
  if (row && row.status !== 'succeeded') throw incomplete(backupId, `its status is ${row.status}`, field);
  let tenantId = row?.tenant_id;
  if (!tenantId) {
    const index = (await store.getJson(indexKey(store, backupId))) as { tenantId?: unknown } | undefined;
    if (!index || typeof index.tenantId !== 'string' || !isUuid(index.tenantId)) throw backupNotFound(backupId, field);
    tenantId = index.tenantId;
  }
  const folder = backupFolder(store, tenantId, backupId);
  const raw = await store.getJson(`${folder}/manifest.json`);
  if (raw === undefined)
    throw incomplete(backupId, 'it has no manifest (it did not finish, or its objects were removed)', field);
  // The format first: a newer build's manifest may not fit this build's schema at all.
  const formatVersion = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof formatVersion === 'number' && !READABLE_FORMATS.includes(formatVersion)) {
    throw new AppError(
      422,
      'backup_format_unsupported',
      'Backup format not supported',
      `backup ${backupId} has format ${formatVersion}; this build reads formats ${READABLE_FORMATS.join(' and ')}`,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success)
    throw incomplete(
      backupId,
      `its manifest is not valid (${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message})`,
      field,
    );
  const manifest = parsed.data;
  if (manifest.backupId !== backupId || manifest.tenant.id !== tenantId)
    throw incomplete(backupId, 'its manifest names another backup or tenant', field);
  return { backupId, tenantId, manifest, folder };
}

/** A file of the template ledger, with its compiled tenant plan (see src/migrations/tenant-plan.ts). */
export type LedgerMigration = { name: string; checksum: string; tenant_plan: TenantPlan | null };

/** The template migrations this database (and build) is at, in order. */
export async function templateMigrations(sql: Sql): Promise<LedgerMigration[]> {
  return sql<LedgerMigration[]>`select name, checksum, tenant_plan from platform.template_migrations order by name`;
}

/**
 * A backup restores at the template version it was made at, or at a later one when the
 * files since then can be replayed onto its rows (see assertReplayable). A newer one (from
 * a later build) cannot be read here.
 */
export function assertTemplateCompatible(manifest: Manifest, current: LedgerMigration[]): void {
  const theirs = manifest.templateMigrations;
  const known = new Map(current.map((m) => [m.name, m.checksum]));
  const unknown = theirs.filter((m) => !known.has(m.name));
  if (unknown.length) {
    throw new AppError(
      422,
      'backup_template_newer',
      'Backup is from a newer template',
      `backup ${manifest.backupId} was made at template ${manifest.templateVersion}, with migrations this build does not know (${unknown.map((m) => m.name).join(', ')}); restore it with a newer tenantforge`,
    );
  }
  const edited = theirs.filter((m) => known.get(m.name) !== m.checksum);
  if (edited.length) {
    throw new AppError(
      422,
      'backup_template_mismatch',
      'Backup template does not match',
      `backup ${manifest.backupId} has migrations with other contents than this build's (${edited.map((m) => m.name).join(', ')})`,
    );
  }
  // Template versions are prefixes of the ledger; anything else is not a version this database had.
  if (theirs.some((m, i) => current[i]?.name !== m.name)) {
    throw new AppError(
      422,
      'backup_template_mismatch',
      'Backup template does not match',
      `backup ${manifest.backupId} was made at template ${manifest.templateVersion}, which is not a version of this template (its migrations are not a prefix of this build's)`,
    );
  }
  if (theirs.length < current.length) assertReplayable(manifest, current.slice(theirs.length));
}

/**
 * Whether the rows of a backup made at an older template version can be restored into
 * the current structure, with the same result as restoring at its version and running
 * the later files' tenant plans on it (what `tenantforge migrate` does to a tenant).
 *
 * That holds when the later files only add: new tables (they stay empty, as they would
 * be), new columns (the load names the backup's columns, so new ones get their default,
 * as ADD COLUMN gives existing rows), indexes, keys, checks, triggers, policies and new
 * defaults (constraints are checked by the load as by the runner). A step that changes
 * what existing rows hold (a dropped, renamed or retyped column, a new NOT NULL, a
 * dropped table) or a per-tenant data section cannot be replayed that way: such a backup
 * is refused, naming the file, and must be restored by a build at its own version.
 */
export function assertReplayable(manifest: Manifest, later: LedgerMigration[]): void {
  const refuse = (m: LedgerMigration, why: string) =>
    new AppError(
      422,
      'backup_template_outdated',
      'Backup is from an older template',
      `backup ${manifest.backupId} was made at template ${manifest.templateVersion}; the later migration ${m.name} ${why}, which a restore cannot replay onto the backup's rows; restore it with a tenantforge build at that template version, then run tenantforge migrate`,
    );
  const inBackup = new Set(manifest.tables.map((t) => t.name));
  for (const m of later) {
    if (!m.tenant_plan) throw refuse(m, 'has no tenant plan (it was applied before tenant plans existed)');
    if (m.tenant_plan.data) throw refuse(m, 'has a per-tenant data section');
    for (const step of loadedPlan(m.tenant_plan).steps) {
      const created = /^create table (.+)$/.exec(step.name)?.[1];
      if (created && inBackup.has(created)) {
        throw new AppError(
          422,
          'backup_incompatible',
          'Backup does not fit the template',
          `backup ${manifest.backupId}: its manifest says it was made at template ${manifest.templateVersion}, before ${m.name} created table ${created}, yet it holds that table`,
        );
      }
      const changesRows =
        /^(drop column|rename column|type of|drop table) /.test(step.name) ||
        (/^not null of /.test(step.name) && /set not null$/.test(step.sql)) ||
        (/^add column /.test(step.name) && / not null$/.test(step.sql) && !/ default /.test(step.sql));
      if (changesRows) throw refuse(m, `changes existing rows (${step.name})`);
    }
  }
}

export type RestoreTarget = { id: string; schema: string };

export type RestoreResult = { rows: Record<string, number>; bytes: number };

/** Loads every table of the backup into `target`'s fresh schema, checking each against the manifest. */
export async function loadBackup(
  tx: Tx,
  store: BackupStore,
  backup: LocatedBackup,
  target: RestoreTarget,
): Promise<RestoreResult> {
  const { manifest, folder, backupId } = backup;
  const schema = assertTenantSchemaName(target.schema);
  await tx`select set_config('app.current_tenant_id', ${target.id}, true), set_config('statement_timeout', '0', true)`;
  await tx.unsafe(`set local role ${ROLES.owner}`);

  const layout = await tableLayout(tx, schema);
  const mismatch = compareLayout(manifest, layout);
  if (mismatch)
    throw new AppError(
      422,
      'backup_incompatible',
      'Backup does not fit the template',
      `backup ${backupId}: ${mismatch}`,
    );

  const tables = manifest.tables.map((t) => `${ident(schema)}.${ident(t.name)}`);
  // Secondary indexes are dropped and built again after the load: one bulk build is far
  // cheaper than a row-by-row insert into each (an HNSW graph above all). Keys stay.
  const indexes = await tx<{ name: string; def: string }[]>`
    select ic.relname as name, pg_get_indexdef(i.indexrelid) as def
    from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = any(${manifest.tables.map((t) => t.name)})
      and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)
      and not exists (select 1 from pg_inherits h where h.inhrelid = c.oid)`;
  await tx.unsafe(
    [
      ...tables.map((t) => `alter table ${t} no force row level security`),
      ...indexes.map((i) => `drop index ${ident(schema)}.${ident(i.name)}`),
    ].join(';\n'),
  );
  const rows: Record<string, number> = {};
  let bytes = 0;
  for (const [i, table] of manifest.tables.entries()) {
    const source = await store.download(`${folder}/${table.object}`);
    if (!source) throw incomplete(backupId, `object ${table.object} is missing from the store`);
    const tap = digestTap();
    const counter = new CopyRowCounter();
    const columns = table.columns.map((c) => ident(c.name)).join(', ');
    const sink = await tx.unsafe(`copy ${tables[i]} (${columns}) from stdin (format binary)`).writable();
    try {
      await pipeline(source, tap, decompressor(manifest.encoding.compression), counter, forwardTo(sink));
    } catch (err) {
      // The server can refuse damaged bytes (a bad value, a broken constraint) before the
      // digest at the end says they are damaged: a failed load checks the object whole.
      if ((err as { severity?: string }).severity && !(await objectIntact(store, `${folder}/${table.object}`, table))) {
        throw corrupt(backupId, `${table.object} does not match its checksum in the manifest`);
      }
      throw violatesTemplate(classifyLoadError(err, backupId, table.object), backupId, table.name);
    }
    const sha256 = tap.sha256();
    const stored = tap.bytes();
    if (sha256 !== table.sha256 || stored !== table.bytes) {
      throw corrupt(
        backupId,
        `${table.object} does not match its checksum in the manifest (sha256 ${sha256.slice(0, 12)}…, ${stored} bytes; expected ${table.sha256.slice(0, 12)}…, ${table.bytes} bytes)`,
      );
    }
    if (counter.rows !== table.rows)
      throw corrupt(backupId, `${table.object} holds ${counter.rows} rows; the manifest says ${table.rows}`);
    // A constraint the rows break is reported here (the COPY's own error comes with the next query).
    const [loaded] = await tx<{ n: string }[]>`select count(*) as n from ${tx(schema)}.${tx(table.name)}`.catch(
      (err) => {
        throw violatesTemplate(
          (err as { severity?: string }).severity ? classifyLoadError(err, backupId, table.object) : err,
          backupId,
          table.name,
        );
      },
    );
    if (Number(loaded!.n) !== table.rows)
      throw corrupt(backupId, `${table.name}: ${loaded!.n} rows loaded; the manifest says ${table.rows}`);
    rows[table.name] = table.rows;
    bytes += stored;
  }
  await tx.unsafe(`set local maintenance_work_mem = '256MB'`);
  await tx.unsafe(
    [...indexes.map((i) => i.def), ...tables.map((t) => `alter table ${t} force row level security`)].join(';\n'),
  );
  await tx.unsafe('reset role');
  return { rows, bytes };
}

/** Whether an object's stored bytes still match their manifest entry (true when that cannot be told: the load's own error stands). */
async function objectIntact(
  store: BackupStore,
  key: string,
  table: { sha256: string; bytes: number },
): Promise<boolean> {
  try {
    const source = await store.download(key);
    if (!source) return true;
    const tap = digestTap();
    await pipeline(source, tap, new Writable({ write: (_chunk, _enc, done) => done() }));
    return tap.sha256() === table.sha256 && tap.bytes() === table.bytes;
  } catch {
    return true;
  }
}

/**
 * Writes into a postgres.js COPY FROM stream without waiting for its end callback:
 * postgres.js never calls it when the server fails the COPY at its end (a deferred
 * constraint), which would hang. The next query on the transaction reports that
 * failure instead (the row count below).
 */
function forwardTo(sink: Writable): Writable {
  const forward = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (sink.write(chunk)) done();
      else sink.once('drain', () => done());
    },
    final(done) {
      sink.end();
      done();
    },
    // A failed source must end the COPY (postgres.js sends CopyFail), or the connection
    // would wait for COPY data forever and the transaction could not roll back.
    destroy(err, done) {
      if (err) sink.destroy(err);
      done(err);
    },
  });
  sink.on('error', (err) => forward.destroy(err));
  return forward;
}

/** What a failed load means: unreadable bytes (corrupt), the store failing (503), or a database error (as is). */
function classifyLoadError(err: unknown, backupId: string, object: string): unknown {
  if (err instanceof AppError) return err;
  const e = err as { code?: string; message?: string; severity?: string };
  // The columns and types were checked against the manifest, so a value the server cannot
  // read (class 22: "invalid field size" and the like) means damaged bytes: a flipped
  // byte can get through the decompressor before its checksum at the end says so.
  if (e.severity && e.code?.startsWith('22')) return corrupt(backupId, `${object} cannot be read (${e.message})`);
  if (e.severity) return err;
  if (isDamagedObjectError(err) || /binary COPY/.test(e.message ?? ''))
    return corrupt(backupId, `${object} cannot be read (${e.message})`);
  return new AppError(
    503,
    'backup_store_unavailable',
    'Backup store unavailable',
    `reading ${object} of backup ${backupId} failed: ${e.message ?? String(err)}; nothing was restored, try again`,
  );
}

/** Rows that break a constraint of the current template (a CHECK added since an older backup): a 422, not a crash. */
function violatesTemplate(err: unknown, backupId: string, table: string): unknown {
  const e = err as { code?: string; message?: string };
  if (typeof e.code !== 'string' || !e.code.startsWith('23')) return err;
  return new AppError(
    422,
    'backup_incompatible',
    'Backup does not fit the template',
    `backup ${backupId}: rows of ${table} break a constraint of the current template (${e.message}); nothing was restored`,
  );
}

const corrupt = (id: string, why: string) =>
  new AppError(422, 'backup_corrupt', 'Backup is corrupt', `backup ${id}: ${why}; nothing was restored`);

/** Why the backup's tables do not fit the schema, or undefined when they do. */
function compareLayout(
  manifest: Manifest,
  layout: { name: string; columns: { name: string; type: string }[] }[],
): string | undefined {
  for (const table of manifest.tables) {
    const here = layout.find((l) => l.name === table.name);
    if (!here) return `table ${table.name} does not exist in the template`;
    for (const column of table.columns) {
      const mine = here.columns.find((c) => c.name === column.name);
      if (!mine) return `column ${table.name}.${column.name} does not exist in the template`;
      if (mine.type !== column.type)
        return `column ${table.name}.${column.name} is ${mine.type} here, ${column.type} in the backup`;
    }
  }
  return undefined;
}
