/**
 * Backs up one tenant: one repeatable-read, read-only transaction (a single consistent
 * snapshot of every table), and per table `COPY (select ...) TO STDOUT (FORMAT binary)`
 * streamed through gzip straight into a multipart upload. Hypertables are read through
 * the hypertable with a query (`COPY hypertable TO` would read only its empty parent),
 * so chunks never appear in a backup. The manifest is written last; then a small index
 * object lets any database find the backup by its id.
 *
 * @example
 * const manifest = await snapshotTenant({ sql: control, store, tenant, backupId });
 */
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Sql, Tx } from '../db/connect.ts';
import { templateVersionOf } from '../migrations/files.ts';
import { assertTenantRoleName, assertTenantSchemaName } from '../provisioning/names.ts';
import { CopyRowCounter } from './copy-rows.ts';
import { backupFolder, FORMAT_VERSION, indexKey, manifestKey, type Manifest, type TableEntry } from './manifest.ts';
import type { BackupStore } from './store.ts';

/**
 * gzip level 1, from Node's own zlib. Measured on the test tenant's objects (README
 * "Backups"): level 6 is 5-15% smaller and about 1.5-2x slower; zstd -1 is 10-30% smaller
 * at the same speed, but needs a native package until Node 22's zlib has it.
 */
export const GZIP_LEVEL = 1;

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

/** Heap blocks per COPY statement: ~2 MiB of table, so each batch is small enough to hold. */
const BATCH_BLOCKS = 256;
const TRAILER = Buffer.from([0xff, 0xff]);

type HeapRange = { tableoid: number | null; blocks: number };

/** The heaps a table's rows live in: the table itself, or each chunk of a hypertable, with their sizes in blocks. */
async function heapRanges(tx: Tx, schema: string, table: string): Promise<HeapRange[]> {
  return tx<HeapRange[]>`
    select case when i.inhrelid is null then null else i.inhrelid::int end as tableoid,
           ceil(pg_relation_size(coalesce(i.inhrelid, c.oid)) / current_setting('block_size')::numeric)::int as blocks
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    left join pg_inherits i on i.inhparent = c.oid
    where n.nspname = ${schema} and c.relname = ${table}
    order by i.inhrelid`;
}

/**
 * One table as one binary COPY stream, read as a series of small COPY statements over
 * ranges of heap blocks (TID range scans), all in the caller's snapshot. Each batch is
 * read whole before the next one starts, and the next starts only when the consumer
 * asks: memory stays bounded by one batch, and postgres.js never has to pause its socket
 * (3.4.9 can stall a COPY stream whose socket it paused: upstream issue #499, PR #1016).
 * Hypertables are read through the hypertable (`tableoid` picks a chunk's rows).
 */
async function* copyInBatches(tx: Tx, select: string, heaps: HeapRange[]): AsyncGenerator<Buffer> {
  let first = true;
  const batches: string[] = [];
  for (const heap of heaps) {
    const which = heap.tableoid === null ? '' : ` and tableoid = ${heap.tableoid}`;
    for (let block = 0; block < Math.max(heap.blocks, 1); block += BATCH_BLOCKS) {
      batches.push(`${select}${which} and ctid >= '(${block},0)'::tid and ctid < '(${block + BATCH_BLOCKS},0)'::tid`);
    }
  }
  if (batches.length === 0) batches.push(`${select} and false`);
  for (const query of batches) {
    const copy = await tx.unsafe(`copy (${query}) to stdout (format binary)`).readable();
    // Never let a push report "full": the batch is bounded, and a paused socket can stall.
    (copy as unknown as { _readableState: { highWaterMark: number } })._readableState.highWaterMark = 1 << 30;
    const chunks: Buffer[] = [];
    for await (const chunk of copy) chunks.push(chunk as Buffer);
    let data = Buffer.concat(chunks);
    // Each COPY has its own header and trailer: keep the first header, drop every trailer, add one at the end.
    if (!first) data = data.subarray(19 + data.readUInt32BE(15));
    data = data.subarray(0, data.length - TRAILER.length);
    first = false;
    if (data.length) yield data;
  }
  yield TRAILER;
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
      const entries: TableEntry[] = [];
      for (const table of layout) {
        signal?.throwIfAborted();
        const columns = table.columns.map((c) => ident(c.name)).join(', ');
        const select = `select ${columns} from ${ident(schema)}.${ident(table.name)} where tenant_id = '${tenant.id}'`;
        const counter = new CopyRowCounter();
        const object = `${table.name}.bin.gz`;
        const source = Readable.from(copyInBatches(tx, select, await heapRanges(tx, schema, table.name)), {
          objectMode: false,
        });
        const body = source.pipe(counter).pipe(createGzip({ level: GZIP_LEVEL }));
        source.on('error', (err) => counter.destroy(err));
        counter.on('error', (err) => body.destroy(err));
        const stored = await store.upload(`${folder}/${object}`, body, { signal });
        entries.push({
          ...table,
          rows: counter.rows,
          object,
          bytes: stored.bytes,
          sha256: stored.sha256,
          rawBytes: counter.bytes,
        });
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
    encoding: { copy: 'binary', compression: 'gzip' },
    serverVersion,
    startedAt,
    finishedAt: new Date().toISOString(),
    tables,
  };
  signal?.throwIfAborted();
  await store.putJson(manifestKey(store, tenant.id, backupId), manifest);
  await store.putJson(indexKey(store, backupId), {
    backupId,
    tenantId: tenant.id,
    manifest: manifestKey(store, tenant.id, backupId),
  });
  return manifest;
}
