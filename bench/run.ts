/**
 * The bench runner: `npm run bench [scenario...] [-- --ci] [--tenants N] [--slo file]`.
 * Runs each scenario, writes bench/results/<scenario>.json and summary.md (plus the
 * provisioning chart), checks every target in the SLO file, and exits 1 naming each miss.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMiss, passed, type Check } from './lib/checks.ts';
import { lineChart } from './lib/chart.ts';
import { startBenchEnvironment, type BenchEnvironment } from './lib/environment.ts';
import { backup } from './scenarios/backup.ts';
import { dataPlane } from './scenarios/data-plane.ts';
import { migrations } from './scenarios/migrations.ts';
import { provisioning } from './scenarios/provisioning.ts';
import { queries } from './scenarios/queries.ts';
import { validator } from './scenarios/validator.ts';
import { vectorSearch } from './scenarios/vector-search.ts';

export type ScenarioContext = {
  startEnvironment(options?: { poolMax?: number }): Promise<BenchEnvironment>;
  slo: Record<string, any>;
  options: { ci: boolean; tenants: number };
  progress(message: string): void;
};

export type ScenarioResult = {
  metrics: Record<string, unknown>;
  checks: Check[];
  /** p50/p99 latency by tenant count (provisioning only), for the chart. */
  curve?: { tenants: number; p50: number; p99: number }[];
};

export type Scenario = { name: string; run(context: ScenarioContext): Promise<ScenarioResult> };

const SCENARIOS: Scenario[] = [provisioning, dataPlane, queries, vectorSearch, validator, migrations, backup];
const RESULTS = join(import.meta.dirname, 'results');

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { ci: { type: 'boolean', default: false }, tenants: { type: 'string' }, slo: { type: 'string' }, out: { type: 'string' } },
  });
  const tenants = Number(values.tenants ?? 2000);
  if (!Number.isInteger(tenants) || tenants < 200) {
    console.error('bench: --tenants must be a whole number of at least 200');
    return 2;
  }
  const unknown = positionals.filter((p) => !SCENARIOS.some((s) => s.name === p));
  if (unknown.length) {
    console.error(`bench: unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const chosen = positionals.length ? SCENARIOS.filter((s) => positionals.includes(s.name)) : SCENARIOS;
  const slo = JSON.parse(readFileSync(values.slo ?? join(import.meta.dirname, 'slo.json'), 'utf8'));
  const out = values.out ?? RESULTS;
  mkdirSync(out, { recursive: true });

  const known: string[] = [];
  const misses: string[] = [];
  const sections: string[] = [];
  for (const scenario of chosen) {
    const started = Date.now();
    console.log(`bench: ${scenario.name}`);
    const result = await scenario.run({
      startEnvironment: startBenchEnvironment,
      slo,
      options: { ci: values.ci!, tenants },
      progress: (m) => console.log(`  ${m}`),
    });
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    const gating = result.checks.filter((c) => !c.knownMiss);
    const record = { scenario: scenario.name, at: new Date().toISOString(), seconds, options: { ci: values.ci, tenants }, ...result, passed: gating.every(passed) };
    writeFileSync(join(out, `${scenario.name}.json`), JSON.stringify(record, null, 2) + '\n');
    if (result.curve) writeFileSync(join(out, `${scenario.name}.svg`), provisioningChart(result.curve));
    sections.push(markdown(scenario.name, seconds, result));
    for (const c of gating.filter((c) => !passed(values.ci ? withNoiseMargin(c, slo.ciNoiseMargin ?? 0) : c))) {
      misses.push(`${scenario.name}: ${describeMiss(c)}`);
    }
    for (const c of result.checks.filter((c) => c.knownMiss && !passed(c))) known.push(`${scenario.name}: ${describeMiss(c)} (known: ${c.knownMiss})`);
  }
  const summary = `# Bench results\n\nRun at ${new Date().toISOString()} (${values.ci ? 'CI configuration' : 'full configuration'}, ${tenants} tenants).\n\n${sections.join('\n')}`;
  writeFileSync(join(out, 'summary.md'), summary);
  console.log(`\n${summary}`);
  if (known.length) console.log(`bench: ${known.length} known miss(es), reported and not gating:\n${known.map((m) => `  - ${m}`).join('\n')}`);
  if (misses.length) {
    console.error(`bench: ${misses.length} target(s) missed:\n${misses.map((m) => `  - ${m}`).join('\n')}`);
    return 1;
  }
  console.log('bench: every target met');
  return 0;
}

/**
 * In CI, strict latency and ratio targets get the margin slo.json justifies: the machine
 * is shared, and one run's p50 ratio moves by that much between identical runs. Seed
 * targets and counts (e.g. 100/100 successes) get none.
 */
function withNoiseMargin(c: Check, margin: number): Check {
  if (c.kind !== 'strict' || (c.unit !== 'ms' && c.unit !== 'x')) return c;
  return { ...c, limit: c.op === '<=' ? c.limit * (1 + margin) : c.limit / (1 + margin) };
}

function markdown(name: string, seconds: number, result: ScenarioResult): string {
  const verdict = (c: Check) => (passed(c) ? 'pass' : c.knownMiss ? `**KNOWN MISS** (${c.knownMiss})` : '**MISS**');
  const rows = result.checks.map((c) => `| ${c.kind} | ${c.name} | ${c.value} ${c.unit} | ${c.op} ${c.limit} ${c.unit} | ${verdict(c)} |`);
  return `## ${name} (${seconds} s)\n\n| kind | target | measured | limit | result |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n`;
}

function provisioningChart(curve: NonNullable<ScenarioResult['curve']>): string {
  return lineChart('Provisioning latency through the API vs existing tenants', 'existing tenants', 'latency (ms)', [
    { label: 'p50', color: '#1f77b4', points: curve.map((p) => ({ x: p.tenants, y: p.p50 })) },
    { label: 'p99', color: '#d62728', points: curve.map((p) => ({ x: p.tenants, y: p.p99 })) },
  ]);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
