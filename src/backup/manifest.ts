/**
 * The backup manifest: the last object a backup writes, and the only way a backup is
 * offered for restore (a backup without one is incomplete). It names the tenant, the
 * template migrations its schema had, and for every table its columns, row count, and
 * the size and SHA-256 of its object.
 *
 * @example
 * const manifest = parseManifest(await store.getJson(manifestKey(store, tenantId, backupId)));
 */
import { z } from 'zod';
import { COMPRESSIONS } from './compression.ts';
import type { BackupStore } from './store.ts';

/**
 * Bumped when the layout changes; a restore refuses formats it does not know.
 * 1: gzip objects. 2: zstd objects (an older build refuses them by this number).
 */
export const FORMAT_VERSION = 2;

/** The formats this build restores. */
export const READABLE_FORMATS: readonly number[] = [1, FORMAT_VERSION];

const column = z.object({ name: z.string(), type: z.string() });

export const tableEntry = z.object({
  name: z.string(),
  hypertable: z.boolean(),
  /** Columns in the order the object holds them (tenant_id is never stored: a restore writes the new tenant's). */
  columns: z.array(column),
  rows: z.number().int().nonnegative(),
  /** Object key, relative to the backup's folder. */
  object: z.string(),
  /** Stored (compressed) bytes and their SHA-256. */
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Uncompressed COPY bytes. */
  rawBytes: z.number().int().nonnegative(),
});
export type TableEntry = z.infer<typeof tableEntry>;

export const manifestSchema = z.object({
  formatVersion: z.number().int(),
  backupId: z.string().uuid(),
  tenant: z.object({ id: z.string().uuid(), slug: z.string(), name: z.string(), plan: z.string() }),
  templateVersion: z.string(),
  /** The tenant schema's migrations (sql/ files) at backup time, in order. */
  templateMigrations: z.array(z.object({ name: z.string(), checksum: z.string() })),
  /** How each object is encoded: PostgreSQL binary COPY, then this compression. */
  encoding: z.object({ copy: z.literal('binary'), compression: z.enum(COMPRESSIONS) }),
  serverVersion: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  tables: z.array(tableEntry),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** `<prefix>/tenants/<tenant>/<backup>`: every object of one backup. */
export const backupFolder = (store: BackupStore, tenantId: string, backupId: string) =>
  store.key('tenants', tenantId, backupId);

export const manifestKey = (store: BackupStore, tenantId: string, backupId: string) =>
  `${backupFolder(store, tenantId, backupId)}/manifest.json`;

/**
 * `<prefix>/index/<backup>.json` -> the backup's tenant. Written after the manifest, so a
 * database that never saw the backup (another server) finds it by its id alone.
 */
export const indexKey = (store: BackupStore, backupId: string) => store.key('index', `${backupId}.json`);
