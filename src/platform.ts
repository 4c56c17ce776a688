/**
 * Start-up: from configuration to a running platform. Finds or starts the database,
 * installs or checks roles and extensions, applies migrations, opens the pools and
 * builds the services. The HTTP server and the CLI both start here.
 *
 * @example
 * const platform = await startPlatform(loadConfig(process.env), log);
 * await platform.tenants.list({ limit: 10 });
 * await platform.close();
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from './config.ts';
import {
  assertExtensions,
  assertReachable,
  describeUrl,
  openPool,
  readServerInfo,
  type ServerInfo,
  type Sql,
} from './db/connect.ts';
import { DatabaseAvailability } from './db/availability.ts';
import { canInstall, checkInstallation, installPlatform } from './db/install.ts';
import { startLocalCluster, type LocalCluster } from './runtime/local-cluster.ts';
import { migrateControlPlane } from './migrations/control-plane.ts';
import { startPeriodic } from './db/periodic.ts';
import { openRuntimeLanes, type RuntimeLanes } from './db/runtime-lanes.ts';
import { LaneWarming } from './db/lane-warming.ts';
import { limitTenants } from './db/with-tenant.ts';
import { BackupService, startBackupScheduler, startBackupWorker, type BackupServiceOptions } from './backup/service.ts';
import { openStore } from './backup/store.ts';
import { startValidatorJob } from './isolation/job.ts';
import type { Logger } from './log.ts';
import { readTenantMigrations } from './migrations/files.ts';
import { migrateTemplate } from './migrations/template.ts';
import { Provisioner, type ProvisionerOptions } from './provisioning/provisioner.ts';
import { TenantActivity } from './tenants/activity.ts';
import { CredentialService } from './tenants/credentials.ts';
import { ApiKeyService } from './tenants/keys.ts';
import { startLoginWatchdog } from './tenants/login-watchdog.ts';
import { startPoolRefill, REFILL_POOL_NAME, type PoolRefillJob } from './tenants/pool-refill.ts';
import { TenantService } from './tenants/service.ts';
import { WarmPool } from './tenants/warm-pool.ts';

export const EMBEDDED_DATABASE = 'tenantforge';

export type Platform = {
  config: Config;
  log: Logger;
  /** Privileged pool: control plane and DDL. */
  control: Sql;
  /** The runtime roles' pools, one per lane: tenant data, always inside withTenant. */
  app: RuntimeLanes;
  /** Opens tenants' tables on their home runtime connections ahead of requests (TENANTFORGE_WARM_CONNECTIONS). */
  warming: LaneWarming | undefined;
  /** Which tenants send requests (tenants.last_request_at), written once a minute. */
  activity: TenantActivity;
  server: ServerInfo;
  adminToken: string;
  provisioner: Provisioner;
  tenants: TenantService;
  keys: ApiKeyService;
  credentials: CredentialService;
  backups: BackupService;
  /** Pre-provisioned tenants that `POST /v1/tenants` claims (TENANTFORGE_WARM_POOL). */
  warmPool: WarmPool;
  /** The warm pool's background refill on this instance, when it runs one. */
  warmPoolRefill: PoolRefillJob | undefined;
  /** The embedded cluster, when this process started or reused it. */
  cluster: LocalCluster | undefined;
  /** Whether the database is reachable: requests fail fast with 503 while it is not. */
  availability: DatabaseAvailability;
  close(): Promise<void>;
};

export class StartupError extends Error {
  override name = 'StartupError';
}

export type StartOptions = {
  provisioner?: ProvisionerOptions;
  runPurgeSweeper?: boolean;
  runValidatorJob?: boolean;
  runLoginWatchdog?: boolean;
  /** Run queued backups in this process (default: when backups are configured and TENANTFORGE_BACKUP_WORKERS > 0). */
  runBackupWorker?: boolean;
  /** Queue scheduled backups and expire old ones (default: when backups are configured). */
  runBackupScheduler?: boolean;
  /** Backup job timings (tests shorten them). */
  backupJobs?: Pick<BackupServiceOptions, 'leaseMs' | 'retryDelayMs' | 'maxAttempts'>;
  /** Keep the warm pool topped up in the background (default: when TENANTFORGE_WARM_POOL > 0). */
  runWarmPoolRefill?: boolean;
  /** Open tenants' tables on their home runtime connections ahead of requests (default: TENANTFORGE_WARM_CONNECTIONS). */
  warmConnections?: boolean;
  /** Refill timings (tests shorten them): rounds every `intervalMs`, none within `quietMs` of a provisioning request. */
  warmPoolRefill?: { intervalMs?: number; quietMs?: number };
};

/** A refill round every quarter second makes up to 4 tenants a second when nothing else runs. */
const REFILL_INTERVAL_MS = 250;
/** How often the requests seen are written to the registry. */
const ACTIVITY_FLUSH_MS = 60_000;
/** The refill stays away for a second after this instance's last provisioning request. */
const REFILL_QUIET_MS = 1_000;

/** Lock timeout of the control pool's sessions. */
const CONTROL_LOCK_TIMEOUT_MS = 10_000;

export async function startPlatform(config: Config, log: Logger, options: StartOptions = {}): Promise<Platform> {
  const secrets = resolveSecrets(config);
  let cluster: LocalCluster | undefined;
  let url = config.databaseUrl;
  if (!url) {
    cluster = await startLocalCluster({ dir: join(config.dataDir, 'pg'), port: config.localPgPort });
    log.info({ dir: cluster.dir, port: cluster.port, reused: !cluster.startedHere }, 'embedded PostgreSQL ready');
    url = cluster.superuserUrl(EMBEDDED_DATABASE);
    await ensureDatabase(cluster.superuserUrl('postgres'), EMBEDDED_DATABASE);
  }
  // Platform work (provisioning, suspension, purge) never waits on a lock for longer than
  // this: a lock a tenant holds makes it fail and be retried, never hang.
  const maxLifetimeSeconds = config.poolMaxLifetimeMs / 1000;
  const control = openPool(url, {
    max: config.poolMax,
    name: 'control',
    lockTimeoutMs: CONTROL_LOCK_TIMEOUT_MS,
    maxLifetimeSeconds,
  });
  // Everything ended at close: pools, and the lanes (which end their seats' pools).
  const pools: Pick<Sql, 'end'>[] = [control];
  try {
    await assertReachable(control, url);
    if (await canInstall(control)) {
      await installPlatform(control, { appPassword: secrets.appPassword });
    } else {
      const problems = await checkInstallation(control);
      if (problems.length) {
        throw new StartupError(
          `${describeUrl(url)} is not ready for tenantforge: ${problems.map((p) => `${p.what} (${p.fix})`).join('; ')}`,
        );
      }
    }
    const server = await readServerInfo(control);
    assertExtensions(server, describeUrl(url));
    const controlPlane = await migrateControlPlane(control);
    const template = await migrateTemplate(control, readTenantMigrations(config.sqlDir));
    log.info(
      { applied: [...controlPlane.applied, ...template.applied], templateVersion: template.version },
      'migrations current',
    );

    // APP_DATABASE_URL gives where the runtime connects (and may carry the lanes' password);
    // each lane logs in as its own role.
    const appUrl = config.appDatabaseUrl ?? url;
    const appPassword =
      (config.appDatabaseUrl && decodeURIComponent(new URL(config.appDatabaseUrl).password)) || secrets.appPassword;
    let warming: LaneWarming | undefined;
    const app = openRuntimeLanes(appUrl, appPassword, {
      connections: config.laneConnections,
      name: 'app',
      maxLifetimeSeconds,
      maxTenantsPerConnection: config.poolMaxTenants,
      onAged: (roles) => warming?.again(roles),
    });
    pools.push(app);
    await Promise.all(app.lanes.map((lane, i) => assertReachable(lane.seats[0]!, app.urls[i]!)));
    for (const lane of app.lanes) {
      limitTenants(lane, {
        perTenant: config.tenantConcurrency,
        queue: config.tenantQueue,
        lockTimeoutMs: config.lockTimeoutMs,
      });
    }

    const provisioner = new Provisioner(control, secrets.schemaSecret, options.provisioner);
    await provisioner.plan();
    const tenants = new TenantService({
      sql: control,
      provisioner,
      log,
      deletedRetentionMs: config.deletedRetentionMs,
      warmPool: config.warmPool > 0,
    });
    // The pool's own connection: a refill never takes a connection a request could use.
    const refillSql = openPool(url, {
      max: 1,
      name: REFILL_POOL_NAME,
      lockTimeoutMs: CONTROL_LOCK_TIMEOUT_MS,
    });
    pools.push(refillSql);
    const warmPool = new WarmPool({ sql: refillSql, provisioner, log, size: config.warmPool });
    const keys = new ApiKeyService(control, tenants);
    const accessWatch = keys.watchAccess();
    const where = new URL(appUrl);
    const credentials = new CredentialService(control, tenants, {
      host: where.hostname,
      port: Number(where.port || 5432),
      database: where.pathname.slice(1),
    });

    const probe = openPool(url, { max: 1, name: 'probe' });
    pools.push(probe);
    const availability = new DatabaseAvailability(() => probe`select 1`, log);

    const activity = new TenantActivity(control);
    if (options.warmConnections ?? config.warmConnections) {
      const lanes = new LaneWarming(app, async () => (await provisioner.plan()).tables, log);
      // In the background: the service answers meanwhile, a cold request only costs more.
      // After an outage every backend is new, so all of them again. A tenant idle for
      // longer than the window is warmed from its first request on (its other tables).
      const warmRecent = () =>
        tenants.activeContexts(config.warmWithinMs).then(
          (recent) => lanes.add(recent),
          (err: unknown) => log.warn({ err }, 'could not list the tenants to warm'),
        );
      void warmRecent();
      availability.onBack(() => void warmRecent());
      tenants.onCreated((tenant) => lanes.add([tenant]));
      activity.onFirstRequest((tenant) => lanes.addUnwarmed(tenant));
      warming = lanes;
    }
    const activityJob = startPeriodic({
      name: 'tenant activity',
      intervalMs: ACTIVITY_FLUSH_MS,
      firstDelayMs: ACTIVITY_FLUSH_MS,
      log,
      run: () => activity.flush(),
    });

    const store = config.backup.bucket ? openStore(config.backup) : undefined;
    const backups = new BackupService({ sql: control, store, tenants, log, ...options.backupJobs });
    const backupWorker =
      store && options.runBackupWorker !== false && config.backup.workers > 0
        ? startBackupWorker(backups, { concurrency: config.backup.workers, log })
        : undefined;
    const backupScheduler =
      store && options.runBackupScheduler !== false && config.backup.scheduleIntervalMs > 0
        ? startBackupScheduler(backups, { intervalMs: config.backup.scheduleIntervalMs, log })
        : undefined;

    // Background jobs back off while the database is unavailable and resume by themselves.
    const sweeper =
      options.runPurgeSweeper === false
        ? undefined
        : startPeriodic({
            name: 'retention purge',
            intervalMs: config.purgeIntervalMs,
            firstDelayMs: config.purgeIntervalMs,
            log,
            run: () => tenants.purgeExpired({ actor: 'system:retention' }),
          });
    const validatorJob =
      options.runValidatorJob === false || config.validatorIntervalMs === 0
        ? undefined
        : startValidatorJob({ sql: control, intervalMs: config.validatorIntervalMs, log });

    const refill =
      options.runWarmPoolRefill === false || config.warmPool === 0
        ? undefined
        : startPoolRefill({
            pool: warmPool,
            sql: refillSql,
            tenants,
            intervalMs: options.warmPoolRefill?.intervalMs ?? REFILL_INTERVAL_MS,
            quietMs: options.warmPoolRefill?.quietMs ?? REFILL_QUIET_MS,
            log,
          });

    const watchdog =
      options.runLoginWatchdog === false || config.watchdogIntervalMs === 0
        ? undefined
        : startLoginWatchdog({ sql: control, intervalMs: config.watchdogIntervalMs, log });

    return {
      config,
      log,
      control,
      app,
      warming,
      activity,
      server,
      adminToken: secrets.adminToken,
      provisioner,
      tenants,
      keys,
      credentials,
      backups,
      warmPool,
      warmPoolRefill: refill,
      cluster,
      availability,
      close: async () => {
        // Jobs get a few seconds to finish their run; a run still waiting then (a query
        // the database never answers) is ended with the pools, which reject its queries.
        backupScheduler?.stop();
        accessWatch.stop();
        const jobs = Promise.all([
          // What this instance saw since the last flush, written before the pools close.
          activityJob.stop().then(() => activity.flush().catch(() => {})),
          warming?.stop(),
          availability.stop(),
          sweeper?.stop(),
          validatorJob?.stop(),
          watchdog?.stop(),
          refill?.stop(),
          backupWorker?.stop(),
        ]);
        await Promise.race([jobs, new Promise((r) => setTimeout(r, 5_000).unref())]);
        store?.close();
        await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
        await jobs;
        if (cluster?.startedHere) await cluster.stop();
      },
    };
  } catch (err) {
    await Promise.all(pools.map((p) => p.end({ timeout: 1 })));
    if (cluster?.startedHere) await cluster.stop();
    throw err;
  }
}

async function ensureDatabase(maintenanceUrl: string, name: string): Promise<void> {
  const sql = openPool(maintenanceUrl, { max: 1, name: 'setup' });
  try {
    await assertReachable(sql, maintenanceUrl);
    const [exists] = await sql`select 1 from pg_database where datname = ${name}`;
    if (!exists) await sql.unsafe(`create database "${name}"`);
  } finally {
    await sql.end();
  }
}

type Secrets = { adminToken: string; schemaSecret: string; appPassword: string };

/**
 * Secrets not given in the environment are generated once and kept in
 * `<data dir>/secrets.json` (mode 0600), so restarts keep the same ones.
 */
function resolveSecrets(config: Config): Secrets {
  const fromEnv = { adminToken: config.adminToken, schemaSecret: config.schemaSecret, appPassword: config.appPassword };
  if (fromEnv.adminToken && fromEnv.schemaSecret && fromEnv.appPassword) return fromEnv as Secrets;
  const file = resolve(config.dataDir, 'secrets.json');
  const stored: Partial<Secrets> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const generated: Secrets = {
    adminToken: stored.adminToken ?? randomBytes(24).toString('base64url'),
    schemaSecret: stored.schemaSecret ?? randomBytes(32).toString('base64url'),
    appPassword: stored.appPassword ?? randomBytes(24).toString('base64url'),
  };
  if (JSON.stringify(stored) !== JSON.stringify(generated)) {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(generated, null, 2) + '\n', { mode: 0o600 });
  }
  return {
    adminToken: fromEnv.adminToken ?? generated.adminToken,
    schemaSecret: fromEnv.schemaSecret ?? generated.schemaSecret,
    appPassword: fromEnv.appPassword ?? generated.appPassword,
  };
}

export function secretsFile(config: Config): string {
  return resolve(config.dataDir, 'secrets.json');
}
