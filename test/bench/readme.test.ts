import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { passed, withNoiseMargin, type Check } from '../../bench/lib/checks.ts';
import { END, performanceTable, readResults, replaceBetweenMarkers, START } from '../../bench/lib/readme-table.ts';
import { projectRoot } from '../../src/paths.ts';

const readme = () => readFileSync(join(projectRoot, 'README.md'), 'utf8');
const results = () => readResults(join(projectRoot, 'bench', 'results'));

describe('README performance table', () => {
  it('is exactly what the committed bench/results files say (run npm run bench:readme after a bench run)', () => {
    const text = readme();
    expect(text).toContain(START);
    expect(text).toContain(END);
    expect(replaceBetweenMarkers(text, performanceTable(results()))).toBe(text);
  });

  it('changes when a committed figure changes, so a stale README cannot pass', () => {
    const doctored = results();
    const first = doctored[0]!.checks[0]!;
    first.value = first.value + 1234.5;
    expect(replaceBetweenMarkers(readme(), performanceTable(doctored))).not.toBe(readme());
  });

  it('marks every missed target as a MISS or, when slo.json names it, a KNOWN MISS, and only those', () => {
    const table = performanceTable(results());
    const misses = results().flatMap((r) => r.checks.filter((c) => !passed(c)));
    expect(table.match(/\*\*MISS\*\*/g)?.length ?? 0).toBe(misses.filter((c) => !c.knownMiss).length);
    expect(table.match(/\*\*KNOWN MISS\*\*/g)?.length ?? 0).toBe(misses.filter((c) => c.knownMiss).length);
  });

  it("names the service settings a run was given, so a tuned run is not read as the default's", () => {
    const tuned = results();
    tuned[0]!.configuration = { ci: true, tenants: 1000, serviceSettings: { TENANTFORGE_POOL_MAX_TENANTS: '20' } };
    expect(performanceTable(tuned)).toContain(
      `**${tuned[0]!.scenario}**: ${tuned[0]!.at.slice(0, 10)}, CI configuration, 1000 tenants, with TENANTFORGE_POOL_MAX_TENANTS=20;`,
    );
  });

  it('refuses a README without the generated section', () => {
    expect(() => replaceBetweenMarkers('# no table here', 'x')).toThrow(/bench:table:start/);
  });
});

describe('CI noise margin', () => {
  const check = (over: Partial<Check>): Check => ({
    name: 't',
    kind: 'strict',
    value: 1,
    limit: 1.2,
    op: '<=',
    unit: 'x',
    ...over,
  });

  it('widens a ratio on its overhead only: 1.2x becomes 1.23x, not 1.38x', () => {
    const c = withNoiseMargin(check({ value: 1.3 }), 0.15);
    expect(c.limit).toBe(1.23);
    expect(c.sloLimit).toBe(1.2);
    expect(passed(c)).toBe(false);
  });

  it('widens a strict latency by the margin and leaves seed targets, counts and recall alone', () => {
    expect(withNoiseMargin(check({ unit: 'ms', limit: 100 }), 0.15).limit).toBe(115);
    expect(withNoiseMargin(check({ kind: 'seed', unit: 'ms', limit: 100 }), 0.15).limit).toBe(100);
    expect(withNoiseMargin(check({ unit: '', limit: 0 }), 0.15).limit).toBe(0);
    expect(withNoiseMargin(check({ unit: '', op: '>=', limit: 0.95 }), 0.15).limit).toBe(0.95);
  });
});
