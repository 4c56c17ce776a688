/**
 * Local PostgreSQL clusters run from the Debian binaries the bootstrap installs:
 * the persistent dev cluster behind `npm start`, and throwaway clusters for tests.
 * Clusters run as the `postgres` OS user when we are root (initdb refuses root).
 *
 * @example
 * const cluster = await startLocalCluster({ dir: '.data/pg', port: 54329 });
 * console.log(cluster.superuserUrl('tenantforge'));
 * await cluster.stop();
 */
import { execFile } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PG_MAJORS = ['17', '16', '15'];

export type LocalCluster = {
  dir: string;
  port: number;
  /** Connection string for the cluster's superuser on loopback. */
  superuserUrl(database: string): string;
  /** Whether this call started the server (false: it was already running and is reused). */
  startedHere: boolean;
  stop(): Promise<void>;
  /** Stops the server and deletes the cluster directory. */
  destroy(): Promise<void>;
};

export class LocalClusterError extends Error {
  override name = 'LocalClusterError';
}

/** The newest installed PostgreSQL whose server has both extensions. */
export function findPgBin(): string {
  for (const major of PG_MAJORS) {
    const bin = `/usr/lib/postgresql/${major}/bin`;
    const ext = `/usr/share/postgresql/${major}/extension`;
    if (
      existsSync(join(bin, 'initdb')) &&
      existsSync(join(ext, 'timescaledb.control')) &&
      existsSync(join(ext, 'vector.control'))
    ) {
      return bin;
    }
  }
  throw new LocalClusterError(
    'no local PostgreSQL with TimescaleDB and pgvector found; run `bash scripts/bootstrap-db.sh` (Debian, root) ' +
      'or set DATABASE_URL to a server that has them (docker compose up gives you one)',
  );
}

const asRoot = process.getuid?.() === 0;

/**
 * Relation files a backend may keep open. Each tenant's tables, indexes and chunks are
 * files of their own, and a backend keeps open every file it reads. PostgreSQL's default
 * (1,000 under a 1,024-descriptor limit) holds only about 40 tenants' worth of the data
 * plane's reads; a backend serving more tenants closed and reopened files on almost
 * every request (measured: runtime backends at 990 open files under a load spread over
 * 1,000 tenants). PostgreSQL uses fewer when the process limit does not allow this many.
 */
const MAX_FILES_PER_PROCESS = 16_384;

/**
 * Runs a PostgreSQL binary as the `postgres` user when we are root; `raiseFileLimit` lifts
 * its soft open-file limit to the hard one first (the server inherits it).
 */
async function pg(bin: string, args: string[], options: { raiseFileLimit?: boolean } = {}): Promise<string> {
  const command = options.raiseFileLimit
    ? ['bash', '-c', 'ulimit -S -n "$(ulimit -H -n)" 2>/dev/null; exec "$0" "$@"', bin, ...args]
    : [bin, ...args];
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', ...command]] : [command[0]!, command.slice(1)];
  try {
    const { stdout } = await run(cmd, argv, { timeout: 120_000, cwd: '/' });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new LocalClusterError(
      `${bin.split('/').pop()} ${args[0] ?? ''} failed: ${(e.stderr || e.stdout || e.message).trim()}`,
    );
  }
}

/** Gives the postgres user a directory it owns; when it cannot reach `wanted`, a stable place it can. */
async function prepareDir(wanted: string): Promise<string> {
  const abs = resolve(wanted);
  if (!asRoot) {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
    return abs;
  }
  mkdirSync(dirname(abs), { recursive: true });
  const reachable = await run('runuser', ['-u', 'postgres', '--', 'test', '-x', dirname(abs)]).then(
    () => true,
    () => false,
  );
  const fallbackRoot = '/var/lib/tenantforge';
  if (!reachable) mkdirSync(fallbackRoot, { recursive: true, mode: 0o755 });
  const dir = reachable ? abs : join(fallbackRoot, createHash('sha256').update(abs).digest('hex').slice(0, 16));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await run('chown', ['postgres:postgres', dir]);
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolveUse) => {
    const server = createServer();
    server.once('error', () => resolveUse(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveUse(false)));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export type StartOptions = {
  /** Where the cluster lives; created on first use. */
  dir: string;
  port: number;
  /** Throwaway clusters trade durability for speed. */
  throwaway?: boolean;
  /** Where the superuser password is kept (readable by us, not by the postgres user). */
  secretFile?: string;
  /** postgresql.conf lines added when the cluster is created. */
  settings?: string[];
};

/** Creates the cluster when missing, then starts it, or reuses it when it is already running. */
export async function startLocalCluster(options: StartOptions): Promise<LocalCluster> {
  const bin = findPgBin();
  const dir = await prepareDir(options.dir);
  const secretFile = options.secretFile ?? join(resolve(options.dir), '..', 'pg-superuser.secret');
  const port = options.port;

  if (!existsSync(join(dir, 'PG_VERSION')))
    await initCluster(bin, dir, port, secretFile, options.throwaway ?? false, options.settings ?? []);
  if (!existsSync(secretFile)) {
    throw new LocalClusterError(
      `the cluster in ${dir} exists but its password file ${secretFile} is missing; delete ${dir} to recreate it`,
    );
  }
  const password = readFileSync(secretFile, 'utf8').trim();

  let startedHere = false;
  if (!isRunning(dir)) {
    clearStalePid(dir);
    if (await portInUse(port)) {
      throw new LocalClusterError(
        `port ${port} is taken by another program, so the local PostgreSQL cannot start; free it or set TENANTFORGE_LOCAL_PG_PORT`,
      );
    }
    const logFile = join(dir, 'server.log');
    const serverOptions = `-p ${port} -c max_files_per_process=${MAX_FILES_PER_PROCESS}`;
    await pg(join(bin, 'pg_ctl'), ['start', '-w', '-t', '60', '-D', dir, '-l', logFile, '-o', serverOptions], {
      raiseFileLimit: true,
    }).catch((err) => {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-4).join(' | ') : '';
      throw new LocalClusterError(`${(err as Error).message.split('\n')[0]} (${logFile}: ${tail})`);
    });
    startedHere = true;
  }

  const cluster: LocalCluster = {
    dir,
    port,
    startedHere,
    superuserUrl: (database) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    stop: async () => {
      if (isRunning(dir)) await pg(join(bin, 'pg_ctl'), ['stop', '-w', '-m', 'fast', '-D', dir]);
    },
    destroy: async () => {
      if (isRunning(dir)) await pg(join(bin, 'pg_ctl'), ['stop', '-w', '-m', 'immediate', '-D', dir]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

async function initCluster(
  bin: string,
  dir: string,
  port: number,
  secretFile: string,
  throwaway: boolean,
  extraSettings: string[],
): Promise<void> {
  const password = randomBytes(24).toString('base64url');
  mkdirSync(dirname(secretFile), { recursive: true });
  writeFileSync(secretFile, password + '\n', { mode: 0o600 });
  // initdb reads the password from a file the postgres user can read; it is deleted right after.
  const pwfile = join(tmpdir(), `tenantforge-pw-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  if (asRoot) await run('chown', ['postgres', pwfile]);
  try {
    await pg(join(bin, 'initdb'), [
      '-D',
      dir,
      '-U',
      'postgres',
      '--pwfile',
      pwfile,
      '--auth-local=peer',
      '--auth-host=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
      ...(throwaway ? ['--no-sync'] : []),
    ]);
  } finally {
    rmSync(pwfile, { force: true });
  }
  const settings = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dir}'`,
    `shared_preload_libraries = 'timescaledb'`,
    `timescaledb.telemetry_level = off`,
    `max_connections = 300`,
    `max_locks_per_transaction = 256`,
    `password_encryption = 'scram-sha-256'`,
    // JIT compiles expressions per query: on the short queries a data plane runs it costs
    // more than it saves (measured: up to 300 ms on a one-second candle aggregation).
    `jit = off`,
    `work_mem = '16MB'`,
    ...(throwaway ? ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off'] : []),
    ...extraSettings,
  ];
  const conf = join(dir, 'postgresql.conf');
  writeFileSync(conf, `${readFileSync(conf, 'utf8')}\n# tenantforge\n${settings.join('\n')}\n`);
}

/**
 * Whether the cluster's postmaster is alive. Not `pg_ctl status`: in a container whose
 * init does not reap, a killed postmaster stays a zombie that still "exists".
 */
function isRunning(dir: string): boolean {
  const pid = postmasterPid(dir);
  return pid !== undefined && pidAlive(pid) && isPostgresProcess(pid);
}

/** The postmaster's pid from the cluster's postmaster.pid (whether or not it still runs). */
export function postmasterPid(dir: string): number | undefined {
  const pidFile = join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * A crashed run leaves postmaster.pid and the socket lock file behind; postgres refuses
 * to start while their pid looks alive (it may be a zombie, or reused by another process).
 */
function clearStalePid(dir: string): void {
  if (isRunning(dir)) return;
  rmSync(join(dir, 'postmaster.pid'), { force: true });
  for (const f of readdirSync(dir)) if (/^\.s\.PGSQL\.\d+(\.lock)?$/.test(f)) rmSync(join(dir, f), { force: true });
}

/** A live (not zombie) postgres process. */
function isPostgresProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('postgres');
  } catch {
    return false;
  }
}

const THROWAWAY_PREFIX = 'tenantforge-test-';

/**
 * A throwaway cluster in a temp dir on a free port. Clusters left by crashed
 * earlier runs (their owner process is gone) are stopped and removed first. By default
 * it runs with fsync, synchronous_commit and full_page_writes off (fast tests);
 * `durable: true` keeps PostgreSQL's durable defaults and 1 GB of shared buffers (benches).
 *
 * @example
 * const cluster = await startThrowawayCluster({ durable: true });
 */
export async function startThrowawayCluster(options: { durable?: boolean } = {}): Promise<LocalCluster> {
  await sweepAbandonedClusters();
  const root = join(tmpdir(), `${THROWAWAY_PREFIX}${randomBytes(4).toString('hex')}`);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  writeFileSync(join(root, 'owner.pid'), String(process.pid));
  const cluster = await startLocalCluster({
    dir: join(root, 'pg'),
    port: await freePort(),
    // Tests skip fsync; benches (durable) must pay for every commit as production does,
    // with shared buffers sized as a server is for its hot indexes (PostgreSQL's guidance
    // is about a quarter of RAM). The default 128 MB is smaller than one tenant's
    // 100,000-vector HNSW index: every search would copy its pages in from the OS cache.
    throwaway: !options.durable,
    settings: options.durable ? [`shared_buffers = '1GB'`] : [],
    secretFile: join(root, 'superuser.secret'),
  });
  return {
    ...cluster,
    destroy: async () => {
      await cluster.destroy();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function sweepAbandonedClusters(): Promise<void> {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(THROWAWAY_PREFIX)) continue;
    const root = join(tmpdir(), name);
    const owner = Number(existsSync(join(root, 'owner.pid')) ? readFileSync(join(root, 'owner.pid'), 'utf8') : NaN);
    if (Number.isInteger(owner) && pidAlive(owner)) continue;
    const pid = postmasterPid(join(root, 'pg'));
    if (pid !== undefined && isRunning(join(root, 'pg'))) process.kill(pid, 'SIGQUIT');
    rmSync(root, { recursive: true, force: true });
  }
}
