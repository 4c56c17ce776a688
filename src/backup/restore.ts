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
 * @example
 * const located = await locateBackup(control, store, backupId);
 * assertTemplateCompatible(located.manifest, await templateMigrations(control));
 * await tenants.create(input, who, undefined, { load: (tx, t) => loadBackup(tx, store, located, t) });
 */
import { digestTap } from './digest-tap.ts';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Sql, Tx } from '../db/connect.ts';
import { ROLES } from '../db/roles.ts';
import { AppError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { assertTenantSchemaName } from '../provisioning/names.ts';
import { CopyRowCounter } from './copy-rows.ts';
import { backupFolder, FORMAT_VERSION, indexKey, manifestSchema, type Manifest } from './manifest.ts';
import { tableLayout } from './snapshot.ts';
import type { BackupStore } from './store.ts';

export type LocatedBackup = { backupId: string; tenantId: string; manifest: Manifest; folder: string };

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

const backupNotFound = (id: string) => new AppError(404, 'backup_not_found', 'Backup not found', `no backup ${JSON.stringify(id)}`, { field: 'restoreFrom.backupId' });

const incomplete = (id: string, why: string) =>
  new AppError(409, 'backup_incomplete', 'Backup is incomplete', `backup ${id} cannot be restored: ${why}`, { field: 'restoreFrom.backupId' });

/** A backup's manifest, found through this database's registry or, failing that, the store's index (a backup made elsewhere). */
export async function locateBackup(sql: Sql, store: BackupStore, backupId: string): Promise<LocatedBackup> {
  if (!isUuid(backupId)) throw backupNotFound(backupId);
  const [row] = await sql<{ tenant_id: string; status: string }[]>`select tenant_id, status from platform.backups where id = ${backupId}`;
  if (row && row.status !== 'succeeded') throw incomplete(backupId, `its status is ${row.status}`);
  let tenantId = row?.tenant_id;
  if (!tenantId) {
    const index = (await store.getJson(indexKey(store, backupId))) as { tenantId?: unknown } | undefined;
    if (!index || typeof index.tenantId !== 'string' || !isUuid(index.tenantId)) throw backupNotFound(backupId);
    tenantId = index.tenantId;
  }
  const folder = backupFolder(store, tenantId, backupId);
  const raw = await store.getJson(`${folder}/manifest.json`);
  if (raw === undefined) throw incomplete(backupId, 'it has no manifest (it did not finish, or its objects were removed)');
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw incomplete(backupId, `its manifest is not valid (${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message})`);
  const manifest = parsed.data;
  if (manifest.formatVersion !== FORMAT_VERSION) {
    throw new AppError(422, 'backup_format_unsupported', 'Backup format not supported', `backup ${backupId} has format ${manifest.formatVersion}; this build reads format ${FORMAT_VERSION}`);
  }
  if (manifest.backupId !== backupId || manifest.tenant.id !== tenantId) throw incomplete(backupId, 'its manifest names another backup or tenant');
  return { backupId, tenantId, manifest, folder };
}

/** The template migrations this database (and build) is at, in order. */
export async function templateMigrations(sql: Sql): Promise<{ name: string; checksum: string }[]> {
  return sql<{ name: string; checksum: string }[]>`select name, checksum from platform.template_migrations order by name`;
}

/**
 * A backup restores only into the template version it was made at. A newer one (from
 * a later build) cannot be read here; an older one needs the tenant migration runner.
 */
export function assertTemplateCompatible(manifest: Manifest, current: { name: string; checksum: string }[]): void {
  const theirs = manifest.templateMigrations;
  const known = new Map(current.map((m) => [m.name, m.checksum]));
  const unknown = theirs.filter((m) => !known.has(m.name));
  if (unknown.length) {
    throw new AppError(422, 'backup_template_newer', 'Backup is from a newer template',
      `backup ${manifest.backupId} was made at template ${manifest.templateVersion}, with migrations this build does not know (${unknown.map((m) => m.name).join(', ')}); restore it with a newer tenantforge`);
  }
  const edited = theirs.filter((m) => known.get(m.name) !== m.checksum);
  if (edited.length) {
    throw new AppError(422, 'backup_template_mismatch', 'Backup template does not match',
      `backup ${manifest.backupId} has migrations with other contents than this build's (${edited.map((m) => m.name).join(', ')})`);
  }
  if (theirs.length < current.length) migrateRestoredTenant(manifest, current);
}

/**
 * Where a backup from an older template version gets brought forward. The tenant
 * migration runner is not part of this build, so such a backup is refused for now; once
 * it is, restore at the backup's version and run the runner here, in the same
 * transaction.
 */
export function migrateRestoredTenant(manifest: Manifest, current: { name: string }[]): never {
  const missing = current.filter((m) => !manifest.templateMigrations.some((t) => t.name === m.name)).map((m) => m.name);
  throw new AppError(422, 'backup_template_outdated', 'Backup is from an older template',
    `backup ${manifest.backupId} was made at template ${manifest.templateVersion}, before ${missing.join(', ')}; restoring older backups needs the tenant migration runner`);
}

export type RestoreTarget = { id: string; schema: string };

export type RestoreResult = { rows: Record<string, number>; bytes: number };

/** Loads every table of the backup into `target`'s fresh schema, checking each against the manifest. */
export async function loadBackup(tx: Tx, store: BackupStore, backup: LocatedBackup, target: RestoreTarget): Promise<RestoreResult> {
  const { manifest, folder, backupId } = backup;
  const schema = assertTenantSchemaName(target.schema);
  await tx`select set_config('app.current_tenant_id', ${target.id}, true), set_config('statement_timeout', '0', true)`;
  await tx.unsafe(`set local role ${ROLES.owner}`);

  const layout = await tableLayout(tx, schema);
  const mismatch = compareLayout(manifest, layout);
  if (mismatch) throw new AppError(422, 'backup_incompatible', 'Backup does not fit the template', `backup ${backupId}: ${mismatch}`);

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
      await pipeline(source, tap, createGunzip(), counter, forwardTo(sink));
    } catch (err) {
      throw classifyLoadError(err, backupId, table.object);
    }
    const sha256 = tap.sha256();
    const stored = tap.bytes();
    if (sha256 !== table.sha256 || stored !== table.bytes) {
      throw corrupt(backupId, `${table.object} does not match its checksum in the manifest (sha256 ${sha256.slice(0, 12)}…, ${stored} bytes; expected ${table.sha256.slice(0, 12)}…, ${table.bytes} bytes)`);
    }
    if (counter.rows !== table.rows) throw corrupt(backupId, `${table.object} holds ${counter.rows} rows; the manifest says ${table.rows}`);
    const [loaded] = await tx<{ n: string }[]>`select count(*) as n from ${tx(schema)}.${tx(table.name)}`;
    if (Number(loaded!.n) !== table.rows) throw corrupt(backupId, `${table.name}: ${loaded!.n} rows loaded; the manifest says ${table.rows}`);
    rows[table.name] = table.rows;
    bytes += stored;
  }
  await tx.unsafe(`set local maintenance_work_mem = '256MB'`);
  await tx.unsafe([...indexes.map((i) => i.def), ...tables.map((t) => `alter table ${t} force row level security`)].join(';\n'));
  await tx.unsafe('reset role');
  return { rows, bytes };
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
  if (e.severity) return err;
  if ((e.code && /^Z_/.test(e.code)) || /binary COPY/.test(e.message ?? '')) return corrupt(backupId, `${object} cannot be read (${e.message})`);
  return new AppError(503, 'backup_store_unavailable', 'Backup store unavailable', `reading ${object} of backup ${backupId} failed: ${e.message ?? String(err)}; nothing was restored, try again`);
}

const corrupt = (id: string, why: string) => new AppError(422, 'backup_corrupt', 'Backup is corrupt', `backup ${id}: ${why}; nothing was restored`);

/** Why the backup's tables do not fit the schema, or undefined when they do. */
function compareLayout(manifest: Manifest, layout: { name: string; columns: { name: string; type: string }[] }[]): string | undefined {
  for (const table of manifest.tables) {
    const here = layout.find((l) => l.name === table.name);
    if (!here) return `table ${table.name} does not exist in the template`;
    for (const column of table.columns) {
      const mine = here.columns.find((c) => c.name === column.name);
      if (!mine) return `column ${table.name}.${column.name} does not exist in the template`;
      if (mine.type !== column.type) return `column ${table.name}.${column.name} is ${mine.type} here, ${column.type} in the backup`;
    }
  }
  return undefined;
}
