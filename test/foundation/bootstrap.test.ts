import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.ts';

const script = join(projectRoot, 'scripts', 'bootstrap-db.sh');
const installed = [
  '/usr/share/postgresql/15/extension/vector.control',
  '/usr/share/postgresql/15/extension/timescaledb.control',
  '/usr/lib/postgresql/15/lib/vector.so',
];
const asRoot = process.getuid?.() === 0;

describe('database bootstrap (scripts/bootstrap-db.sh)', () => {
  it('changes nothing when run again on a machine it has set up', () => {
    // A first run settles what can be settled (it may upgrade an old pgvector build, or
    // find no newer source and note that for a day); the run after it must do nothing.
    expect(spawnSync('bash', [script], { encoding: 'utf8' }).status).toBe(0);
    const before = installed.map((f) => statSync(f).mtimeMs);
    const run = spawnSync('bash', [script], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('nothing to do');
    expect(run.stdout).not.toMatch(/installing|building/);
    expect(installed.map((f) => statSync(f).mtimeMs)).toEqual(before);
  });

  it('reads the installed pgvector version from vector.control and reports an older build as an upgrade needing root', () => {
    const version = /default_version = '([^']+)'/.exec(readFileSync(installed[0]!, 'utf8'))![1]!;
    const asUser = (env: string[]) =>
      spawnSync(
        asRoot ? 'runuser' : 'env',
        asRoot ? ['-u', 'postgres', '--', 'env', ...env, 'bash', '-s'] : [...env, 'bash', '-s'],
        { input: readFileSync(script), encoding: 'utf8', cwd: '/' },
      );
    const current = asUser([`PGVECTOR_MIN=${version}`]);
    expect(current.status).toBe(0);
    expect(current.stdout).toContain(`pgvector ${version} and TimescaleDB`);
    expect(current.stdout).toContain('nothing to do');
    // A wanted version above what is installed: without root it warns and still succeeds (the service runs; /readyz warns).
    const older = asUser(['PGVECTOR_MIN=99.0.0']);
    expect(older.status).toBe(0);
    expect(older.stdout).toContain(`pgvector ${version} is older than 99.0.0`);
    expect(older.stdout).toContain('needs Debian and root');
  });

  it('stops, naming what is missing and the Docker route, where it may not install (no root)', () => {
    // PG_MAJOR=99 is never installed; run as the unprivileged postgres user (or ourselves when not root).
    const command = asRoot
      ? ['runuser', ['-u', 'postgres', '--', 'env', 'PG_MAJOR=99', 'bash', '-s']]
      : ['env', ['PG_MAJOR=99', 'bash', '-s']];
    const run = spawnSync(command[0] as string, command[1] as string[], {
      input: readFileSync(script),
      encoding: 'utf8',
      cwd: '/',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('missing: postgresql-99 pgvector timescaledb');
    expect(run.stderr).toContain('Debian as root only');
    expect(run.stderr).toContain('docker compose up');
  });
});
