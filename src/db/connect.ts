/**
 * postgres.js pools and start-up checks that turn connection failures into one clear line.
 *
 * @example
 * const sql = openPool(url, { max: 10, name: 'control' });
 * await assertReachable(sql, url); // throws DatabaseUnavailableError: "cannot connect to ..."
 */
import postgres from 'postgres';
import { REQUIRED_EXTENSIONS } from './roles.ts';
import { SQLSTATE } from './sqlstate.ts';

export type Sql = postgres.Sql;
/** A transaction's handle (what `sql.begin` passes to its callback). */
export type Tx = postgres.TransactionSql<Record<string, never>>;

export type PoolOptions = {
  max?: number;
  name?: string;
  /**
   * Recycle connections: each backend caches catalog entries for every table it has
   * touched and never frees them, so a long-lived connection grows with the tenants it serves.
   */
  maxLifetimeSeconds?: number;
  /** Seconds an idle connection stays open (default 60; 0: until the pool ends or recycles it). */
  idleTimeoutSeconds?: number;
  /** Server-side `lock_timeout` of every session: no platform wait can hang on a lock forever. */
  lockTimeoutMs?: number;
};

export function openPool(url: string, options: PoolOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    connect_timeout: 5,
    idle_timeout: options.idleTimeoutSeconds ?? 60,
    // Each connection draws its own lifetime between the setting and half again, so the
    // connections opened together at start-up are not all recycled in the same second.
    // The driver takes a function here (as its own default is) although its type says number.
    max_lifetime: jittered(options.maxLifetimeSeconds ?? 30 * 60) as unknown as number,
    connection: {
      application_name: `tenantforge:${options.name ?? 'pool'}`,
      ...(options.lockTimeoutMs ? { lock_timeout: options.lockTimeoutMs } : {}),
      // No transaction of ours waits on the client for a minute; one that does has lost
      // its client (seen after database restarts), and would hold its snapshot and locks
      // forever: the server ends it, and the waiting query fails instead of hanging.
      idle_in_transaction_session_timeout: 60_000,
    },
    // Seconds before reconnecting after a failed connect: 0.1, 0.2, 0.4, 0.8, then 1 (with
    // jitter). The driver's default grows to 20 s, so after a long outage a pool would
    // wait up to 20 s before it noticed the database was back.
    backoff: (retries: number) => Math.min(1, 0.05 * 2 ** retries) * (0.75 + Math.random() / 4),
    onnotice: () => {},
  });
}

function jittered(seconds: number): () => number {
  return () => withJitter(seconds);
}

/** A duration drawn between `value` and half again, so things started together do not all end together. */
export function withJitter(value: number): number {
  return value * (1 + Math.random() / 2);
}

export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

export class MissingExtensionError extends Error {
  override name = 'MissingExtensionError';
}

/** `postgres://user:secret@host:5432/db` -> `user@host:5432/db` (never prints the password). */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${decodeURIComponent(u.username) || '(default user)'}@${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** Runs a trivial query; on failure throws one line naming the server and the cause. */
export async function assertReachable(sql: Sql, url: string): Promise<void> {
  try {
    await sql`select 1`;
  } catch (err) {
    throw new DatabaseUnavailableError(`cannot connect to PostgreSQL at ${describeUrl(url)}: ${connectionCause(err)}`);
  }
}

function connectionCause(err: unknown): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case SQLSTATE.invalidPassword:
      return 'password authentication failed (check the password in the URL)';
    case SQLSTATE.invalidAuthorizationSpecification:
      return `access denied: ${e.message}`;
    case SQLSTATE.invalidCatalogName:
      return `${e.message} (create it, or name an existing database in the URL)`;
    case 'ECONNREFUSED':
      return 'connection refused (is the server running and listening on that port?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timed out after 5 s (is the host reachable?)';
    default:
      return e.message ?? String(err);
  }
}

export type ServerInfo = {
  serverVersion: string;
  extensions: Record<string, string | null>;
};

/** Installed versions of the required extensions in the connected database (null = not installed). */
export async function readServerInfo(sql: Sql): Promise<ServerInfo> {
  const [row] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
  const installed = await sql<{ extname: string; extversion: string }[]>`
    select extname, extversion from pg_extension where extname = any(${[...REQUIRED_EXTENSIONS]})`;
  const extensions: Record<string, string | null> = {};
  for (const name of REQUIRED_EXTENSIONS)
    extensions[name] = installed.find((e) => e.extname === name)?.extversion ?? null;
  return { serverVersion: row!.version, extensions };
}

const HOW_TO_GET: Record<string, string> = {
  timescaledb:
    "TimescaleDB: on Debian run `bash scripts/bootstrap-db.sh`; elsewhere use the timescale/timescaledb-ha image; the server also needs shared_preload_libraries = 'timescaledb'",
  vector:
    'pgvector: on Debian run `bash scripts/bootstrap-db.sh`; elsewhere install pgvector 0.8 or use the timescale/timescaledb-ha image',
  pgcrypto: 'pgcrypto: ships with PostgreSQL (Debian package postgresql-contrib)',
};

/** How to get an extension the server does not have. */
export function extensionHint(name: string): string {
  return HOW_TO_GET[name] ?? `install the ${name} extension on the server`;
}

/** Required extensions the server cannot provide at all (not installed on the machine). */
export async function unavailableExtensions(sql: Sql): Promise<string[]> {
  const available = await sql<
    { name: string }[]
  >`select name from pg_available_extensions where name = any(${[...REQUIRED_EXTENSIONS]})`;
  return REQUIRED_EXTENSIONS.filter((e) => !available.some((a) => a.name === e));
}

/** Throws when a required extension is missing, naming it and how to get it. */
export function assertExtensions(info: ServerInfo, where: string): void {
  const missing = Object.entries(info.extensions)
    .filter(([, version]) => version === null)
    .map(([name]) => name);
  if (missing.length === 0) return;
  throw new MissingExtensionError(
    `database ${where} lacks the extension${missing.length > 1 ? 's' : ''} ${missing.join(', ')}. ` +
      missing.map((m) => HOW_TO_GET[m]).join('. ') +
      '. Connect once with a superuser DATABASE_URL so start-up can create them.',
  );
}
