/**
 * The bench runner: `npm run bench [scenario...] [-- --ci] [--tenants N] [--slo file]
 * [--service TENANTFORGE_X=value ...]`. Runs each scenario, writes
 * bench/results/<scenario>.json and summary.md (plus a scenario's chart), checks every
 * target in the SLO file, and exits 1 naming each miss. Each result records the commit,
 * the server's settings and the configuration it ran with; the verdict in the file, in
 * summary.md and in the exit code is one and the same. `--service` gives the service a
 * setting to measure (e.g. TENANTFORGE_POOL_MAX_TENANTS=20), recorded in the result and
 * shown wherever the result is.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMiss, passed, verdict, withNoiseMargin, type Check } from './lib/checks.ts';
import { lineChart, type Series } from './lib/chart.ts';
import { describeConfiguration } from './lib/readme-table.ts';
import {
  serviceSettingsFrom,
  startBenchEnvironment,
  type BenchEnvironment,
  type ServerFacts,
} from './lib/environment.ts';
import { backup } from './scenarios/backup.ts';
import { dataPlane } from './scenarios/data-plane.ts';
import { migrations } from './scenarios/migrations.ts';
import { provisioning } from './scenarios/provisioning.ts';
import { queries } from './scenarios/queries.ts';
import { spread } from './scenarios/spread.ts';
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
  /** A line chart against the tenant count, written next to the result as <scenario>.svg. */
  chart?: { title: string; series: Series[] };
};

export type Scenario = { name: string; run(context: ScenarioContext): Promise<ScenarioResult> };

const SCENARIOS: Scenario[] = [provisioning, dataPlane, queries, spread, vectorSearch, validator, migrations, backup];
const RESULTS = join(import.meta.dirname, 'results');

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      ci: { type: 'boolean', default: false },
      tenants: { type: 'string' },
      slo: { type: 'string' },
      out: { type: 'string' },
      service: { type: 'string', multiple: true },
    },
  });
  const tenants = Number(values.tenants ?? 2000);
  if (!Number.isInteger(tenants) || tenants < 200) {
    console.error('bench: --tenants must be a whole number of at least 200');
    return 2;
  }
  let serviceSettings: Record<string, string>;
  try {
    serviceSettings = serviceSettingsFrom(values.service ?? []);
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    return 2;
  }
  const unknown = positionals.filter((p) => !SCENARIOS.some((s) => s.name === p));
  if (unknown.length) {
    console.error(
      `bench: unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`,
    );
    return 2;
  }
  const chosen = positionals.length ? SCENARIOS.filter((s) => positionals.includes(s.name)) : SCENARIOS;
  const slo = JSON.parse(readFileSync(values.slo ?? join(import.meta.dirname, 'slo.json'), 'utf8'));
  const out = values.out ?? RESULTS;
  mkdirSync(out, { recursive: true });

  const known: string[] = [];
  const misses: string[] = [];
  const sections: string[] = [];
  const commit = gitCommit();
  const margin = values.ci ? (slo.ciNoiseMargin ?? 0) : 0;
  for (const scenario of chosen) {
    const started = Date.now();
    const runOnce = async () => {
      const servers: ServerFacts[] = [];
      const result = await scenario.run({
        startEnvironment: async (o) => {
          const env = await startBenchEnvironment({ ...o, serviceSettings });
          servers.push(env.server);
          return env;
        },
        slo,
        options: { ci: values.ci!, tenants },
        progress: (m) => console.log(`  ${m}`),
      });
      // The limits as judged (CI margin applied; known misses marked): the file, summary.md and the exit code agree.
      const checks = result.checks.map((c) =>
        markKnownMiss(withNoiseMargin(c, margin), scenario.name, slo.knownMisses),
      );
      return { result, checks, server: servers[0] ?? null, missed: checks.filter((c) => !passed(c) && !c.knownMiss) };
    };
    console.log(`bench: ${scenario.name}`);
    let run = await runOnce();
    const earlier = [];
    // On a shared CI machine one stall can sink a tail figure: a CI miss is confirmed by a
    // second run of the scenario, which alone is judged. Both are in the result file.
    if (values.ci && run.missed.length) {
      console.log(
        `bench: ${scenario.name} missed ${run.missed.map(describeMiss).join('; ')}: running it once more to confirm`,
      );
      earlier.push({ checks: run.checks, metrics: run.result.metrics });
      run = await runOnce();
    }
    const { result, checks, server } = run;
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    const record = {
      scenario: scenario.name,
      at: new Date().toISOString(),
      seconds,
      commit,
      server,
      configuration: { ci: values.ci, tenants, serviceSettings, ciNoiseMargin: margin, slo },
      ...result,
      checks,
      passed: checks.every((c) => passed(c) || c.knownMiss !== undefined),
      unconfirmedMisses: earlier,
    };
    writeFileSync(join(out, `${scenario.name}.json`), JSON.stringify(record, null, 2) + '\n');
    if (result.chart)
      writeFileSync(
        join(out, `${scenario.name}.svg`),
        lineChart(result.chart.title, 'existing tenants', 'latency (ms)', result.chart.series),
      );
    sections.push(markdown(scenario.name, seconds, checks, earlier.length > 0));
    for (const c of checks.filter((c) => !passed(c)))
      (c.knownMiss ? known : misses).push(
        `${scenario.name}: ${describeMiss(c)}${c.knownMiss ? ` (known: ${c.knownMiss})` : ''}`,
      );
  }
  const summary = `# Bench results\n\nRun at ${new Date().toISOString()} on commit ${commit.sha.slice(0, 12)}${commit.dirty ? ' (with uncommitted changes)' : ''} (${describeConfiguration({ ci: values.ci!, tenants, serviceSettings })}).\n\n${sections.join('\n')}${misses.length ? `\n**${misses.length} target(s) missed.**\n` : known.length ? `\nEvery target met except ${known.length} known miss(es).\n` : '\nEvery target met.\n'}`;
  writeFileSync(join(out, 'summary.md'), summary);
  console.log(`\n${summary}`);
  if (known.length)
    console.log(
      `bench: ${known.length} known miss(es), reported and not gating:\n${known.map((m) => `  - ${m}`).join('\n')}`,
    );
  if (misses.length) {
    console.error(`bench: ${misses.length} target(s) missed:\n${misses.map((m) => `  - ${m}`).join('\n')}`);
    return 1;
  }
  console.log('bench: every target met');
  return 0;
}

/** The commit the results come from, and whether the tree had uncommitted changes. */
function gitCommit(): { sha: string; dirty: boolean } {
  const git = (args: string[]) => spawnSync('git', args, { cwd: import.meta.dirname, encoding: 'utf8' });
  const head = git(['rev-parse', 'HEAD']);
  if (head.status !== 0) return { sha: 'unknown', dirty: true };
  return { sha: head.stdout.trim(), dirty: git(['status', '--porcelain']).stdout.trim() !== '' };
}

/** A check slo.json's `knownMisses` names ("<scenario>: <check name>") carries the issue that fixes it. */
function markKnownMiss(c: Check, scenario: string, knownMisses: Record<string, string> = {}): Check {
  const issue = knownMisses[`${scenario}: ${c.name}`];
  return issue ? { ...c, knownMiss: issue } : c;
}

function markdown(name: string, seconds: number, checks: Check[], rerun: boolean): string {
  const rows = checks.map(
    (c) =>
      `| ${c.kind} | ${c.name} | ${c.value} ${c.unit} | ${c.op} ${c.limit} ${c.unit}${c.sloLimit !== undefined ? ` (slo.json ${c.sloLimit}, CI margin)` : ''} | ${verdict(c)} |`,
  );
  const note = rerun
    ? 'The first run missed a target; this is the confirming second run (both are in the result file).\n\n'
    : '';
  return `## ${name} (${seconds} s)\n\n${note}| kind | target | measured | limit | result |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n`;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
