/**
 * Backs up one tenant: one repeatable-read, read-only transaction (a single consistent
 * snapshot of every table), and per table `COPY (select ...) TO STDOUT (FORMAT binary)`
 * streamed through zstd straight into a multipart upload. Hypertables are read through
 * the hypertable with a query (`COPY hypertable TO` would read only its empty parent),
 * so chunks never appear in a backup. The manifest is written last, with a small index
 * object that lets any database find the backup by its id.
 *
 * @example
 * const manifest = await snapshotTenant({ sql: control, store, tenant, backupId });
 */
import { finished } from 'node:stream/promises';
import type { Sql, Tx } from '../db/connect.ts';
import { templateVersionOf } from '../migrations/files.ts';
import { assertTenantRoleName, assertTenantSchemaName } from '../provisioning/names.ts';
import { CopyRowCounter } from './copy-rows.ts';
import { backupFolder, FORMAT_VERSION, indexKey, manifestKey, type Manifest, type TableEntry } from './manifest.ts';
import { Coalesce } from './coalesce.ts';
import { COMPRESSION, compressor, OBJECT_SUFFIX } from './compression.ts';
import type { BackupStore } from './store.ts';

/**
 * COPY arrives in runs of rows, one per socket read (up to 64 KiB; the driver patch in
 * patches/ joins them), or row by row when the server sends slowly: smaller chunks are
 * joined up to this size, larger ones pass without a copy.
 */
const COPY_BLOCK_BYTES = 32 * 1024;

export type SnapshotTenant = { id: string; slug: string; name: string; plan: string; schema: string; role: string };

export type TableLayout = { name: string; hypertable: boolean; columns: { name: string; type: string }[] };

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * A tenant schema's tables in creation order (foreign-key targets first, as the template
 * creates them), without chunks, and their columns without tenant_id.
 */
export async function tableLayout(tx: Sql | Tx, schema: string): Promise<TableLayout[]> {
  const rows = await tx<{ name: string; hypertable: boolean; columns: { name: string; type: string }[] }[]>`
    select c.relname as name,
           exists (select 1 from _timescaledb_catalog.hypertable h where h.schema_name = n.nspname and h.table_name = c.relname) as hypertable,
           (select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) order by a.attnum)
              from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attname <> 'tenant_id') as columns
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relkind in ('r', 'p')
      and not exists (select 1 from pg_inherits i where i.inhrelid = c.oid)
    order by c.oid`;
  return rows;
}

/**
 * Tables whose uploads may run at once: each holds at most the store's part buffers
 * (store.ts), so memory stays bounded whatever the tenant's size.
 */
const UPLOADS_IN_FLIGHT = 3;

/**
 * The tables' positions in `layout`, largest on disk first (a hypertable with its chunks):
 * the uploads of the large ones overlap with reading the rest, and the last upload, which
 * nothing overlaps, is a small table's.
 */
async function largestFirst(tx: Tx, schema: string, layout: TableLayout[]): Promise<number[]> {
  const sizes = await tx<{ name: string; bytes: string }[]>`
    select c.relname as name,
           pg_table_size(c.oid) + coalesce((select sum(pg_table_size(i.inhrelid)) from pg_inherits i where i.inhparent = c.oid), 0) as bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = any(${layout.map((t) => t.name)})`;
  const size = new Map(sizes.map((s) => [s.name, Number(s.bytes)]));
  const bytes = (i: number) => size.get(layout[i]!.name) ?? 0;
  return layout.map((_, i) => i).sort((a, b) => bytes(b) - bytes(a));
}

export async function snapshotTenant(options: {
  sql: Sql;
  store: BackupStore;
  tenant: SnapshotTenant;
  backupId: string;
  signal?: AbortSignal;
}): Promise<Manifest> {
  const { sql, store, tenant, backupId, signal } = options;
  const schema = assertTenantSchemaName(tenant.schema);
  const folder = backupFolder(store, tenant.id, backupId);
  const startedAt = new Date().toISOString();

  const { tables, migrations, serverVersion } = await sql.begin(
    'isolation level repeatable read read only',
    async (tx) => {
      // The tenant's own rows only. A superuser bypasses RLS (the where clause below keeps
      // other ids out); any other role reads as the tenant's role, through its policy (the
      // owner cannot: FORCE subjects it to RLS, and no policy is written for it).
      await tx`select set_config('app.current_tenant_id', ${tenant.id}, true), set_config('statement_timeout', '0', true)`;
      const [me] = await tx<
        { superuser: boolean }[]
      >`select rolsuper as superuser from pg_roles where rolname = current_user`;
      if (!me?.superuser) await tx.unsafe(`set local role "${assertTenantRoleName(tenant.role)}"`);
      const layout = await tableLayout(tx, schema);
      const [migrationRows, [version]] = await Promise.all([
        tx<
          { name: string; checksum: string }[]
        >`select name, checksum from platform.tenant_migrations where tenant_id = ${tenant.id} order by name`,
        tx<{ v: string }[]>`select current_setting('server_version') as v`,
      ]);
      // Each entry at its table's place in creation order, the order a restore loads them in
      // (foreign-key targets first), whatever order the uploads finish in.
      const entries: TableEntry[] = new Array(layout.length);
      // The connection reads one table after another while the store still takes the
      // earlier tables' last parts: waiting for each upload before the next COPY left the
      // database idle for most of a backup's tail.
      const uploads = new Set<Promise<unknown>>();
      // The first failure anywhere ends the attempt and aborts every upload still running.
      const stop = new AbortController();
      const uploadSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
      let failed: (err: unknown) => void = () => {};
      const failure = new Promise<never>((_, reject) => (failed = reject));
      failure.catch(() => {});
      try {
        for (const position of await largestFirst(tx, schema, layout)) {
          const table = layout[position]!;
          signal?.throwIfAborted();
          while (uploads.size >= UPLOADS_IN_FLIGHT) await Promise.race([...uploads, failure]);
          const columns = table.columns.map((c) => ident(c.name)).join(', ');
          const select = `select ${columns} from ${ident(schema)}.${ident(table.name)} where tenant_id = '${tenant.id}'`;
          const counter = new CopyRowCounter();
          const object = `${table.name}${OBJECT_SUFFIX}`;
          const query = tx.unsafe(`copy (${select}) to stdout (format binary)`);
          const source = await query.readable();
          const rows = source.pipe(new Coalesce(COPY_BLOCK_BYTES)).pipe(counter);
          source.on('error', (err) => counter.destroy(err));
          const body = rows.pipe(compressor());
          counter.on('error', (err) => body.destroy(err));
          const uploaded = store.upload(`${folder}/${object}`, body, { signal: uploadSignal }).then((stored) => {
            entries[position] = {
              ...table,
              rows: counter.rows,
              object,
              bytes: stored.bytes,
              sha256: stored.sha256,
              rawBytes: counter.bytes,
            };
            uploads.delete(uploaded);
          }, failed);
          uploads.add(uploaded);
          try {
            await Promise.race([finished(source), failure]);
          } catch (err) {
            // The COPY must end before the transaction can roll back: cancel it and drop the
            // rest of its bytes (a paused, abandoned COPY stream would hold the connection).
            await query.cancel();
            source.unpipe();
            source.resume();
            body.destroy(err as Error);
            await finished(source).catch(() => {});
            throw err;
          }
        }
        await Promise.race([Promise.all(uploads), failure]);
      } catch (err) {
        stop.abort(err);
        throw err;
      } finally {
        // No upload may outlive the attempt: its caller deletes what was stored.
        await Promise.allSettled(uploads);
      }
      return { tables: entries, migrations: migrationRows, serverVersion: version!.v };
    },
  );

  const manifest: Manifest = {
    formatVersion: FORMAT_VERSION,
    backupId,
    tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name, plan: tenant.plan },
    templateVersion: templateVersionOf(migrations),
    templateMigrations: migrations,
    encoding: { copy: 'binary', compression: COMPRESSION },
    serverVersion,
    startedAt,
    finishedAt: new Date().toISOString(),
    tables,
  };
  signal?.throwIfAborted();
  // Both at once: until the manifest is there, the index only leads to "incomplete". A
  // failed attempt deletes the index with the backup's folder.
  await Promise.all([
    store.putJson(manifestKey(store, tenant.id, backupId), manifest),
    store.putJson(indexKey(store, backupId), {
      backupId,
      tenantId: tenant.id,
      manifest: manifestKey(store, tenant.id, backupId),
    }),
  ]);
  return manifest;
}
