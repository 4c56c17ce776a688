import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { projectRoot } from '../../src/paths.ts';
import { scratchDir } from '../support/scratch.ts';

const slo = JSON.parse(readFileSync(join(projectRoot, 'bench', 'slo.json'), 'utf8'));

/** Runs the bench runner as CI does, against the run's database server. */
function bench(args: string[], sloFile: string, out: string) {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', join(projectRoot, 'bench', 'run.ts'), ...args, '--slo', sloFile, '--out', out],
    {
      cwd: projectRoot,
      encoding: 'utf8',
      // Two provisioning runs (the miss and its confirmation), each with its warm-pool part.
      timeout: 900_000,
      env: { ...process.env, DATABASE_URL: inject('databaseUrl'), TENANTFORGE_APP_PASSWORD: inject('appPassword') },
    },
  );
}

describe('bench runner', () => {
  it('confirms a CI miss with a second run, exits non-zero naming the target and the miss, and reports a known miss without failing on it', () => {
    const out = scratchDir('tf-bench-test-');
    const file = join(out, 'slo.json');
    const impossible = structuredClone(slo);
    impossible.provisioning.seed.p99Ms = 0.001;
    impossible.provisioning.seed.concurrentWallMs = 0.001;
    impossible.knownMisses = { 'provisioning: 100 concurrent: wall time': 'issue 0' };
    writeFileSync(file, JSON.stringify(impossible));
    const run = bench(
      ['provisioning', '--ci', '--tenants', '200', '--service', 'TENANTFORGE_POOL_MAX_TENANTS=500'],
      file,
      out,
    );
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/provisioning: seed target p99: [\d.]+ ms > 0\.001 ms \([\d.]+% over\)/);
    expect(run.stderr).not.toMatch(/seed target 100 concurrent: wall time/);
    expect(run.stdout).toContain('known miss(es), reported and not gating');
    expect(run.stdout).toMatch(
      /provisioning missed (.+; )?seed target p99: [\d.]+ ms > 0\.001 ms \([\d.]+% over\)(; .+)?: running it once more to confirm/,
    );
    const result = JSON.parse(readFileSync(join(out, 'provisioning.json'), 'utf8'));
    expect(result.passed).toBe(false);
    expect(result.unconfirmedMisses).toHaveLength(1);
    expect(result.unconfirmedMisses[0].checks.find((c: { name: string }) => c.name === 'p99').value).toBeGreaterThan(
      0.001,
    );
    // Provenance: the commit, the server's settings and the configuration the run used.
    const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: projectRoot, encoding: 'utf8' }).stdout.trim();
    expect(result.commit.sha).toBe(head);
    for (const name of ['fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers'])
      expect(result.server.settings[name], name).toMatch(/\S/);
    expect(result.server.version).toMatch(/^15\./);
    expect(Object.keys(result.server.extensions)).toEqual(expect.arrayContaining(['timescaledb', 'vector']));
    expect(result.configuration).toMatchObject({
      ci: true,
      tenants: 200,
      serviceSettings: { TENANTFORGE_POOL_MAX_TENANTS: '500' },
      slo: { provisioning: { seed: { p99Ms: 0.001 } } },
    });
    expect(result.checks.find((c: { name: string; kind: string }) => c.name === 'p99' && c.kind === 'seed').limit).toBe(
      0.001,
    );
    // One verdict: the summary names the same misses the exit code and the file report.
    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toContain('**MISS**');
    expect(summary).toMatch(/\*\*\d+ target\(s\) missed\.\*\*/);
    const missed = result.checks.filter((c: { value: number; limit: number; op: string }) =>
      c.op === '<=' ? c.value > c.limit : c.value < c.limit,
    );
    expect(summary.match(/\*\*MISS\*\*/g)!.length).toBe(
      missed.filter((c: { knownMiss?: string }) => !c.knownMiss).length,
    );
    expect(summary).toContain('**KNOWN MISS** (issue 0)');
    expect(summary).toContain('this is the confirming second run');
    expect(summary).toContain('(CI configuration, 200 tenants, with TENANTFORGE_POOL_MAX_TENANTS=500)');
    expect(readFileSync(join(out, 'provisioning.svg'), 'utf8')).toMatch(/^<svg /);
  }, 920_000);

  it('refuses an unknown scenario with a usage error', () => {
    const out = scratchDir('tf-bench-test-');
    const run = bench(['no-such-scenario'], join(projectRoot, 'bench', 'slo.json'), out);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('unknown scenario(s) no-such-scenario');
  });

  it('refuses a --service that is not a service setting, one the bench sets itself, or a bad value', () => {
    const out = scratchDir('tf-bench-test-');
    const slo = join(projectRoot, 'bench', 'slo.json');
    for (const given of [
      'POOL_MAX_TENANTS=20',
      'TENANTFORGE_POOL_MAX_TENANTS',
      'TENANTFORGE_POOL_MAX_TENANT=20',
      'TENANTFORGE_WARM_POOL=5',
    ]) {
      const run = bench(['spread', '--service', given], slo, out);
      expect(run.status, given).toBe(2);
      expect(run.stderr).toContain(`--service takes TENANTFORGE_<SETTING>=<value>`);
      expect(run.stderr).toContain(JSON.stringify(given));
    }
    const bad = bench(['spread', '--service', 'TENANTFORGE_POOL_MAX_TENANTS=many'], slo, out);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--service: invalid configuration: TENANTFORGE_POOL_MAX_TENANTS="many"/);
  });
});
