/**
 * `tenantforge` command line: the service, migrations and the tenant registry.
 * Errors print one line saying what to do, and exit non-zero (2 for usage errors).
 *
 * @example
 * tenantforge tenants create --slug acme --name "Acme Capital" --plan pro
 */
import { parseArgs } from 'node:util';
import { ZodError, type z } from 'zod';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { DatabaseUnavailableError, MissingExtensionError } from '../db/connect.ts';
import { LocalClusterError } from '../runtime/local-cluster.ts';
import { MigrationError } from '../migrations/control-plane.ts';
import { AppError } from '../errors.ts';
import { saveReport } from '../isolation/report.ts';
import { formatReport } from '../isolation/text.ts';
import { validate, ValidatorError } from '../isolation/validator.ts';
import { createLogger } from '../log.ts';
import { startPlatform, StartupError, type Platform } from '../platform.ts';
import { TemplateError } from '../provisioning/clone-plan.ts';
import { progressPrinter } from '../migrations/progress.ts';
import { UnknownTenantError } from '../migrations/behind.ts';
import { migrateTenants, RunInProgressError, type RunSummary } from '../migrations/runner.ts';
import { runServer } from '../server.ts';
import { createTenantInput, listTenantsQuery, updateTenantInput } from '../tenants/schemas.ts';
import type { Tenant } from '../tenants/service.ts';
import { OVERDUE_LIST_LIMIT, type BackupCoverage } from '../backup/coverage.ts';
import type { Backup } from '../backup/service.ts';

const USAGE = `usage: tenantforge <command>

  serve                                  run the HTTP service (embedded PostgreSQL unless DATABASE_URL is set)
  migrate [--json] [--wait] [--tenant T ...]
                                         install roles and extensions if allowed, migrate the control plane and the
                                         template, then every tenant behind it (with --tenant: only those, a canary
                                         first): exit 0 all current, 1 some tenants failed (named), 2 could not run
  tenants create --slug S --name N [--plan free|pro|enterprise] [--idempotency-key K]
  tenants list [--limit N] [--cursor C] [--status S]
  tenants show <id-or-slug>
  tenants update <id-or-slug> [--name N] [--plan P] [--status active|suspended]
  tenants delete <id-or-slug> [--purge]
  tenants purge-expired                  purge soft-deleted tenants past their retention
  validate [--tenant T] [--fix]          check tenant isolation: exit 0 clean, 1 violations, 2 could not run
  backups create <tenant> [--wait]       back up a tenant (with --wait: run it here and wait; exit 1 if it failed)
  backups list <tenant>                  a tenant's backups, newest first
  backups show <tenant> <backup-id>
  backups coverage [--limit N]           whether scheduled backups keep up: exit 0 none overdue, 1 some (listed)
                                         or backups not configured
  restore <backup-id> --into <new-slug> [--name N] [--plan P]   a new tenant from a backup (any database's)
  restore <backup-id> --in-place <tenant> --confirm <tenant-slug> [--allow-other-tenant]
                                         replace an existing tenant's rows with the backup's (one transaction)

  --json prints machine-readable output. Settings come from the environment (see README).`;

class UsageError extends Error {}

export async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    const code = fail(err, false);
    return argv[0] === 'validate' || argv[0] === 'migrate' ? 2 : code;
  }
  const [command, sub, ...rest] = argv;
  try {
    if (!command || command === 'help' || command === '--help') {
      console.log(USAGE);
      return command ? 0 : 2;
    }
    if (command === 'serve') {
      await runServer(config, createLogger(config.logLevel));
      return 0;
    }
    if (command === 'migrate') return await migrateCommand(config, argv.slice(1));
    if (command === 'tenants') return await tenantsCommand(config, sub, rest);
    if (command === 'validate') return await validateCommand(config, argv.slice(1));
    if (command === 'backups') return await backupsCommand(config, sub, rest);
    if (command === 'restore') return await restoreCommand(config, argv.slice(1));
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  } catch (err) {
    return fail(err, config.debugErrors);
  }
}

/** Who the audit log names for a command run from this shell. */
const cliActor = () => `cli:${process.env.USER ?? 'unknown'}`;

async function tenantsCommand(config: Config, sub: string | undefined, args: string[]): Promise<number> {
  const who = { actor: cliActor() };
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      slug: { type: 'string' },
      name: { type: 'string' },
      plan: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      'idempotency-key': { type: 'string' },
      purge: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const target = () => positionals[0] ?? raise(new UsageError(`tenants ${sub} needs an <id-or-slug>`));
  const print = (tenant: Tenant) => console.log(values.json ? JSON.stringify(tenant) : describe(tenant));
  return withPlatform(config, async ({ tenants }) => {
    switch (sub) {
      case 'create': {
        const input = parse(createTenantInput, { slug: values.slug, name: values.name, plan: values.plan });
        print((await tenants.create(input, who, values['idempotency-key'])).tenant);
        return 0;
      }
      case 'list': {
        const page = await tenants.list(
          parse(listTenantsQuery, { limit: values.limit, cursor: values.cursor, status: values.status }),
        );
        if (values.json) console.log(JSON.stringify(page));
        else {
          for (const t of page.items) console.log(describe(t));
          if (page.nextCursor) console.log(`more: --cursor ${page.nextCursor}`);
        }
        return 0;
      }
      case 'show':
        print(await tenants.get(target()));
        return 0;
      case 'update':
        print(
          await tenants.update(
            target(),
            parse(updateTenantInput, { name: values.name, plan: values.plan, status: values.status }),
            who,
          ),
        );
        return 0;
      case 'delete':
        print(await tenants.delete(target(), { purge: values.purge ?? false }, who));
        return 0;
      case 'purge-expired':
        console.log(`purged ${await tenants.purgeExpired(who)} tenant(s)`);
        return 0;
      default:
        throw new UsageError(`unknown tenants subcommand ${JSON.stringify(sub ?? '')}`);
    }
  });
}

/** Exit 0 when every tenant is current, 1 when some failed (named), 2 when the run could not start. */
async function migrateCommand(config: Config, args: string[]): Promise<number> {
  let options: { json?: boolean; wait?: boolean; tenant?: string[] };
  try {
    options = parseArgs({
      args,
      options: { json: { type: 'boolean' }, wait: { type: 'boolean' }, tenant: { type: 'string', multiple: true } },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  try {
    return await withPlatform(config, async ({ control, log }) => {
      const show = progressPrinter(process.stderr);
      // Ctrl-C / SIGTERM: take no new tenant, let the ones in flight commit or roll back.
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      try {
        const summary = await migrateTenants(control, {
          concurrency: config.migrateConcurrency,
          lockTimeoutMs: config.migrateLockTimeoutMs,
          retries: config.migrateRetries,
          actor: cliActor(),
          wait: options.wait,
          tenants: options.tenant,
          onProgress: show.update,
          signal: stop.signal,
          log,
        });
        show.end();
        console.log(options.json ? JSON.stringify(summary) : describeRun(summary));
        return summary.status === 'current' || summary.status === 'succeeded' ? 0 : 1;
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    });
  } catch (err) {
    fail(err, config.debugErrors);
    return 2;
  }
}

function describeRun(s: RunSummary): string {
  if (s.status === 'current') return `every tenant is at ${s.targetVersion} (checked in ${s.durationMs} ms)`;
  const lines = [
    `run ${s.runId} ${s.status}: ${s.migrated} migrated, ${s.failed} failed, ${s.skipped} skipped of ${s.total} tenants behind, ` +
      `to ${s.targetVersion} in ${(s.durationMs / 1000).toFixed(1)} s (${s.tenantsPerSecond} tenants/s)`,
  ];
  for (const f of s.failures)
    lines.push(`  failed: ${f.tenantId} ${f.schema} ${f.migration ?? ''} after ${f.attempts} attempt(s): ${f.error}`);
  if (s.failed)
    lines.push(
      'these tenants stay on their version and keep serving; fix the cause and run `tenantforge migrate` again (only they are retried)',
    );
  if (s.status === 'interrupted') lines.push('interrupted: run `tenantforge migrate` again to finish');
  return lines.join('\n');
}

async function backupsCommand(config: Config, sub: string | undefined, args: string[]): Promise<number> {
  const who = { actor: cliActor() };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { wait: { type: 'boolean' }, json: { type: 'boolean' }, limit: { type: 'string' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (sub === 'coverage') return coverageCommand(config, values);
  const tenant = positionals[0] ?? raise(new UsageError(`backups ${sub ?? ''} needs a <tenant> (id or slug)`));
  const print = (b: Backup) => console.log(values.json ? JSON.stringify(b) : describeBackup(b));
  return withPlatform(config, async ({ backups }) => {
    switch (sub) {
      case 'create': {
        const backup = await backups.start(tenant, who);
        if (!values.wait) {
          print(backup);
          return 0;
        }
        const done = await backups.runAndWait(backup.id);
        print(done);
        if (done.status !== 'succeeded') {
          console.error(
            `tenantforge: error: backup ${done.id} ${done.status}: ${done.error ?? 'unknown error'} (check the store settings and run it again)`,
          );
          return 1;
        }
        return 0;
      }
      case 'list': {
        const items = await backups.list(tenant, values.limit ? Number(values.limit) : 100);
        if (values.json) console.log(JSON.stringify({ items }));
        else for (const b of items) console.log(describeBackup(b));
        return 0;
      }
      case 'show':
        print(await backups.get(tenant, positionals[1] ?? raise(new UsageError('backups show needs a <backup-id>'))));
        return 0;
      default:
        throw new UsageError(`unknown backups subcommand ${JSON.stringify(sub ?? '')}`);
    }
  });
}

async function coverageCommand(config: Config, values: { json?: boolean; limit?: string }): Promise<number> {
  const limit = values.limit === undefined ? OVERDUE_LIST_LIMIT : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new UsageError(`--limit must be a whole number of at least 1, not ${JSON.stringify(values.limit)}`);
  return withPlatform(config, async ({ backups }) => {
    const coverage = await backups.coverage(limit);
    if (values.json) console.log(JSON.stringify(coverage));
    if (!coverage.configured) {
      console.error(
        'tenantforge: error: backups are not configured, so no tenant is being backed up (set TENANTFORGE_BACKUP_URL=s3://<bucket>[/<prefix>])',
      );
      return 1;
    }
    if (!values.json) console.log(describeCoverage(coverage));
    return coverage.overdueTenants > 0 ? 1 : 0;
  });
}

function describeCoverage(c: BackupCoverage): string {
  const age = (s: number) => `${(s / 3600).toFixed(1)} h`;
  const lines = [
    `${c.scheduledTenants} tenants on a backup schedule, ${c.overdueTenants} overdue, ${c.lastFailedTenants} whose last attempt failed`,
    `worst recovery point: ${c.oldestAgeSeconds === null ? 'none scheduled' : `${age(c.oldestAgeSeconds)} old`}; jobs queued ${c.jobs.queued}, running ${c.jobs.running}, longest wait ${c.jobs.delaySeconds} s`,
  ];
  for (const t of c.overdue)
    lines.push(
      `overdue ${t.slug} (${t.tenantId}, ${t.plan}): last backup ${t.lastBackupAt ?? 'never'}, ${age(t.ageSeconds)} ago${t.lastAttemptFailed ? ', last attempt failed' : ''}`,
    );
  if (c.overdue.length < c.overdueTenants) lines.push(`... and ${c.overdueTenants - c.overdue.length} more (--limit)`);
  return lines.join('\n');
}

async function restoreCommand(config: Config, args: string[]): Promise<number> {
  const who = { actor: cliActor() };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        into: { type: 'string' },
        name: { type: 'string' },
        plan: { type: 'string' },
        json: { type: 'boolean' },
        'in-place': { type: 'string' },
        confirm: { type: 'string' },
        'allow-other-tenant': { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const backupId = positionals[0] ?? raise(new UsageError('restore needs a <backup-id>'));
  const inPlace = values['in-place'];
  if (inPlace !== undefined) {
    if (values.into) throw new UsageError('restore takes --into <new-slug> or --in-place <tenant>, not both');
    if (!values.confirm)
      throw new UsageError(`restore --in-place replaces every row of the tenant: add --confirm <its slug> to confirm`);
    return withPlatform(config, async ({ backups }) => {
      const { tenant, restoredRows } = await backups.restoreInPlace(
        inPlace,
        backupId,
        { confirm: values.confirm, allowOtherTenant: values['allow-other-tenant'] },
        who,
      );
      if (values.json) console.log(JSON.stringify({ ...tenant, restoredFrom: backupId, restoredRows }));
      else
        console.log(
          `${describe(tenant)}\nrestored in place from ${backupId}: ${Object.entries(restoredRows)
            .map(([t, n]) => `${t} ${n}`)
            .join(', ')}`,
        );
      return 0;
    });
  }
  if (!values.into)
    throw new UsageError('restore needs --into <new-slug> (a new tenant) or --in-place <tenant> --confirm <its slug>');
  return withPlatform(config, async ({ backups }) => {
    const input = parse(createTenantInput, { slug: values.into, name: values.name ?? values.into, plan: values.plan });
    const { tenant, restoredRows } = await backups.restoreInto(input, backupId, who);
    if (values.json) console.log(JSON.stringify({ ...tenant, restoredRows }));
    else
      console.log(
        `${describe(tenant)}\nrestored from ${backupId}: ${Object.entries(restoredRows)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ')}`,
      );
    return 0;
  });
}

function describeBackup(b: Backup): string {
  const rows = b.tables ? Object.values(b.tables).reduce((n, r) => n + r, 0) : null;
  return [
    b.id,
    b.status.padEnd(9),
    b.trigger.padEnd(9),
    b.createdAt,
    b.sizeBytes === null ? '-' : `${b.sizeBytes} bytes`,
    rows === null ? '' : `${rows} rows`,
    b.durationMs === null ? '' : `${b.durationMs} ms`,
    b.error ?? '',
  ]
    .filter((x) => x !== '')
    .join('  ');
}

/** Exit 0 when clean, 1 on violations, 2 when the validator could not run. */
async function validateCommand(config: Config, args: string[]): Promise<number> {
  let options: { tenant?: string; json?: boolean; fix?: boolean };
  try {
    options = parseArgs({
      args,
      options: { tenant: { type: 'string' }, json: { type: 'boolean' }, fix: { type: 'boolean' } },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  try {
    return await withPlatform(config, async ({ control }) => {
      const report = await validate(control, { tenant: options.tenant, fix: options.fix });
      // Only whole-platform runs are "the latest report" the admin API shows.
      if (!options.tenant) await saveReport(control, report);
      console.log(options.json ? JSON.stringify(report) : formatReport(report));
      return report.outcome === 'clean' ? 0 : 1;
    });
  } catch (err) {
    fail(err, config.debugErrors);
    return 2;
  }
}

async function withPlatform<T>(config: Config, work: (platform: Platform) => Promise<T>): Promise<T> {
  const platform = await startPlatform(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel), {
    runPurgeSweeper: false,
    runValidatorJob: false,
    // One-shot commands claim from the warm pool; only `serve` keeps it filled, and
    // only `serve` has requests to open tenants' tables ahead of.
    runWarmPoolRefill: false,
    warmConnections: false,
  });
  try {
    return await work(platform);
  } finally {
    await platform.close();
  }
}

function parse<S extends z.ZodType>(schema: S, raw: Record<string, unknown>): z.infer<S> {
  const defined = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  return schema.parse(defined);
}

function describe(t: Tenant): string {
  return `${t.id}  ${t.slug.padEnd(24)} ${t.status.padEnd(9)} ${t.plan.padEnd(10)} ${t.schema}  ${t.name}`;
}

function raise(err: Error): never {
  throw err;
}

/** One line on stderr: what went wrong and what to do. */
function fail(err: unknown, debug: boolean): number {
  const known = [
    RunInProgressError,
    UnknownTenantError,
    ConfigError,
    DatabaseUnavailableError,
    MissingExtensionError,
    StartupError,
    LocalClusterError,
    MigrationError,
    TemplateError,
    AppError,
    ValidatorError,
  ];
  let message: string;
  if (err instanceof UsageError) {
    console.error(`tenantforge: ${err.message}\n\n${USAGE}`);
    return 2;
  } else if (err instanceof ZodError) {
    message = err.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ');
  } else if (err instanceof AppError) {
    message = `${err.message} [${err.code}]`;
  } else if (known.some((k) => err instanceof k)) {
    message = (err as Error).message;
  } else {
    message = `unexpected error: ${(err as Error)?.message ?? String(err)} (set TENANTFORGE_DEBUG_ERRORS=true for the stack)`;
  }
  console.error(`tenantforge: error: ${message}`);
  if (debug && err instanceof Error) console.error(err.stack);
  return 1;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main(process.argv.slice(2), process.env).then((code) => process.exit(code));
}
