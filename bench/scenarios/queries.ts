/**
 * Queries: a simple select, a join over portfolios, orders and trades, daily candles
 * over 1,000,000 one-minute bars, and a 1,000-row insert; each run through withTenant
 * (role, search_path, tenant setting, RLS) and, as the baseline, the same statement run
 * directly as the owner with no tenant context. Each gets a seed latency target and a
 * strict target on its p50 ratio to that baseline.
 *
 * The bars arrive through the API's ingest path (`POST /v1/market-data:batch`, 10,000 at
 * a time), which keeps the hourly rollups; the candles query is the endpoint's own, and
 * aggregates those rollups (about 16,700 hourly rows for 1,000,000 bars) into daily
 * candles, so the figure is what a caller of the endpoint waits for.
 *
 * CI runs the same rounds as a full run: ingesting the bars is most of the scenario's
 * time, and with a third of the rounds the p50 ratios of the 10-25 ms statements ranged
 * over 0.86-1.33x from run to run on this shared machine (0.96-1.17x with all of them).
 */
import type { Sql } from '../../src/db/connect.ts';
import { withTenant } from '../../src/db/with-tenant.ts';
import { candleSql } from '../../src/data/market-data.ts';
import type { Check } from '../lib/checks.ts';
import { ratio, summarize, timed, type Summary } from '../lib/stats.ts';
import { benchTenant, type BenchTenant } from '../lib/tenant.ts';
import type { Scenario } from '../run.ts';

/** The trades span 100,000 minutes from 2026-01-01; the last week of them is about 10,000 fills. */
const LAST_WEEK = new Date(Date.UTC(2026, 0, 1) + (100_000 - 7 * 1440) * 60_000).toISOString();

type Query = {
  name: string;
  sql: string;
  params: () => unknown[];
  seedKey: string;
  ratioKey: string;
  runs: number;
  readOnly: boolean;
};
const BAR_BATCH = 10_000;
const BARS_FROM = Date.UTC(2024, 0, 1);

export const queries: Scenario = {
  name: 'queries',
  async run({ startEnvironment, slo, progress }) {
    const env = await startEnvironment();
    try {
      const tenant = await benchTenant(env, 'bench-queries');
      const bars = slo.queries.bars;
      progress('loading 50 portfolios, 20,000 orders, 100,000 trades');
      await load(env.su, tenant.schema, tenant.id);
      progress(`ingesting ${bars} one-minute bars through the API, ${BAR_BATCH} a request`);
      const [ingestMs] = await timed(() => ingestBars(tenant, bars));
      const [rollup] = (await env.su.unsafe(
        `select count(*)::int as rows, sum(bars)::int as bars from "${tenant.schema}".market_data_1h`,
      )) as unknown as [{ rows: number; bars: number }];
      if (rollup.bars !== bars)
        throw new Error(`the hourly rollups cover ${rollup.bars} bars, not the ${bars} ingested`);
      await settleStatistics(env.su, tenant.schema);
      const [{ id: portfolioId, order_id: orderId }] = (await env.su.unsafe(
        `select p.id, o.id as order_id from "${tenant.schema}".portfolios p join "${tenant.schema}".orders o on o.portfolio_id = p.id limit 1`,
      )) as unknown as [{ id: string; order_id: string }];

      let batch = 0;
      const list: Query[] = [
        {
          name: 'simple select',
          seedKey: 'simpleSelectMs',
          ratioKey: 'simpleSelectP50Ratio',
          runs: 2000,
          readOnly: true,
          sql: 'select * from orders where id = $1',
          params: () => [orderId],
        },
        // A desk's dashboard: each portfolio's fills of the last week with their orders.
        {
          name: 'join portfolios/orders/trades',
          seedKey: 'complexJoinMs',
          ratioKey: 'complexJoinP50Ratio',
          runs: 100,
          readOnly: true,
          sql: `select p.id, p.name, count(*) as fills, count(distinct t.order_id) as orders,
                       sum(t.quantity * t.price) as notional, count(*) filter (where o.status = 'filled') as fills_of_filled_orders
                from portfolios p
                join trades t on t.portfolio_id = p.id and t.executed_at >= $1
                join orders o on o.id = t.order_id
                group by p.id, p.name order by notional desc limit 20`,
          params: () => [LAST_WEEK],
        },
        // The candles endpoint's own query: daily candles of one symbol over all its bars.
        {
          name: `daily candles over ${bars} bars`,
          seedKey: 'aggregationMs',
          ratioKey: 'aggregationP50Ratio',
          runs: 60,
          readOnly: true,
          sql: candleSql(86_400),
          params: () => ['86400 seconds', 'ONE', '2024-01-01T00:00:00Z', '2027-01-01T00:00:00Z'],
        },
        {
          name: '1,000-row insert',
          seedKey: 'bulkInsertMs',
          ratioKey: 'bulkInsertP50Ratio',
          runs: 60,
          readOnly: false,
          sql: `insert into orders (tenant_id, portfolio_id, symbol, side, type, quantity)
                select $1, $2, 'BULK' || g % 10, 'buy', 'market', 1 from generate_series(1, 1000) g`,
          params: () => [tenant.id, portfolioId],
        },
      ];

      const results: Record<
        string,
        { withTenant: Summary; owner: Summary; p50Ratio: number; plans?: { withTenant: string[]; owner: string[] } }
      > = {};
      const checks: Check[] = [];
      for (const q of list) {
        progress(q.name);
        const qualified = q.sql.replace(
          /\b(from|join|into) (portfolios|orders|trades|market_data_1h|market_data)\b/g,
          `$1 "${tenant.schema}".$2`,
        );
        // A read's plan on either side, before and after its timing: a ratio that moves is a flip or noise.
        const plans = { withTenant: new Set<string>(), owner: new Set<string>() };
        const notePlans = async () => {
          if (!q.readOnly) return;
          const explain = `explain (format json) ${q.sql}`;
          plans.withTenant.add(
            planShape(
              await withTenant(env.platform.app, tenant.context, (tx) => tx.unsafe(explain, q.params() as never[]), {
                readOnly: true,
              }),
            ),
          );
          plans.owner.add(planShape(await env.su.unsafe(`explain (format json) ${qualified}`, q.params() as never[])));
        };
        await notePlans();
        const context: number[] = [];
        const owner: number[] = [];
        for (let i = 0; i < q.runs; i++) {
          batch++;
          context.push(
            (
              await timed(() =>
                withTenant(env.platform.app, tenant.context, (tx) => tx.unsafe(q.sql, q.params() as never[]), {
                  readOnly: q.readOnly,
                }),
              )
            )[0],
          );
          owner.push((await timed(() => env.su.unsafe(qualified, q.params() as never[])))[0]);
        }
        await notePlans();
        const r = {
          withTenant: summarize(context),
          owner: summarize(owner),
          p50Ratio: ratio(summarize(context).p50, summarize(owner).p50),
          ...(q.readOnly && { plans: { withTenant: [...plans.withTenant], owner: [...plans.owner] } }),
        };
        results[q.name] = r;
        checks.push({
          name: `${q.name}: p95`,
          kind: 'seed',
          value: r.withTenant.p95,
          limit: slo.queries.seed[q.seedKey],
          op: '<=',
          unit: 'ms',
        });
        checks.push({
          name: `${q.name}: p50 withTenant / owner`,
          kind: 'strict',
          value: r.p50Ratio,
          limit: slo.queries.strict[q.ratioKey],
          op: '<=',
          unit: 'x',
        });
      }
      return {
        metrics: {
          bars,
          barsIngest: {
            through: 'POST /v1/market-data:batch',
            perRequest: BAR_BATCH,
            seconds: Math.round(ingestMs / 100) / 10,
          },
          candlesAggregate: { table: 'market_data_1h', hourlyRows: rollup.rows, barsCovered: rollup.bars },
          rows: { portfolios: 50, orders: 20_000, trades: 100_000 },
          statements: batch,
          results,
        },
        checks,
      };
    } finally {
      await env.close();
    }
  },
};

type PlanNode = { 'Node Type': string; Plans?: PlanNode[] };

/** An EXPLAIN (FORMAT JSON)'s node types, depth first: "Limit, Sort, Aggregate, Hash Join, ...". */
function planShape(rows: unknown[]): string {
  const [
    {
      'QUERY PLAN': [{ Plan: root }],
    },
  ] = rows as [{ 'QUERY PLAN': [{ Plan: PlanNode }] }];
  const types: string[] = [];
  const walk = (node: PlanNode) => {
    types.push(node['Node Type']);
    node.Plans?.forEach(walk);
  };
  walk(root);
  // Runs of one type (a hypertable's chunk scans) as "Index Scan x25".
  const runs: string[] = [];
  for (let i = 0; i < types.length; ) {
    const type = types[i] as string;
    let j = i;
    while (types[j] === type) j++;
    runs.push(j - i > 1 ? `${type} x${j - i}` : type);
    i = j;
  }
  return runs.join(', ');
}

/** One symbol's one-minute bars from 2024-01-01, through the API as a client would send them. */
async function ingestBars(tenant: BenchTenant, bars: number): Promise<void> {
  for (let from = 0; from < bars; from += BAR_BATCH) {
    const batch = Array.from({ length: Math.min(BAR_BATCH, bars - from) }, (_, j) => {
      const g = from + j;
      return {
        symbol: 'ONE',
        time: new Date(BARS_FROM + g * 60_000).toISOString(),
        open: (100 + (g % 11) * 0.1).toFixed(1),
        high: '102',
        low: '98',
        close: (100 + (g % 7) * 0.1).toFixed(1),
        volume: '5',
      };
    });
    await tenant.api('POST', '/v1/market-data:batch', { bars: batch });
  }
}

async function load(sql: Sql, schema: string, tenantId: string): Promise<void> {
  const s = `"${schema}"`;
  await sql.unsafe(`
    insert into ${s}.portfolios (tenant_id, name) select '${tenantId}', 'Portfolio ' || g from generate_series(1, 50) g;
    insert into ${s}.orders (tenant_id, portfolio_id, symbol, side, type, quantity, filled_quantity, status)
      select '${tenantId}', p.id, 'SYM' || (g % 40), case when g % 2 = 0 then 'buy' else 'sell' end, 'market', 10,
             case when g % 3 = 0 then 0 else 10 end, case when g % 3 = 0 then 'open' else 'filled' end
      from generate_series(1, 20000) g join (select id, row_number() over () - 1 as n from ${s}.portfolios) p on p.n = g % 50;
    insert into ${s}.trades (tenant_id, portfolio_id, order_id, symbol, side, quantity, price, executed_at)
      select '${tenantId}', o.portfolio_id, o.id, o.symbol, o.side, 2, 100 + (g % 50), timestamptz '2026-01-01' + g * interval '1 minute'
      from generate_series(1, 100000) g join (select id, portfolio_id, symbol, side, row_number() over () - 1 as n from ${s}.orders where status = 'filled') o
        on o.n = g % 13000;`);
}

/**
 * Tables as the planner sees them in a steady state, the same in every run:
 * - vacuumed first: otherwise autovacuum visits the freshly loaded chunks at a moment
 *   of its choosing, possibly while a statement is being timed, and changes the page
 *   counts and all-visible fractions its plans are costed from;
 * - ANALYZE samples 30,000 rows: the join's 100,000 trades were sampled differently in
 *   every run, and the planner flipped between a hash join and a memoized nested loop
 *   three times slower, on either side of the join's ratio (1.08-3.27x from run to run).
 *   The trades are analyzed from every row; the tables the other statements plan from
 *   (portfolios, orders, the hourly rollups) are smaller than the sample and read whole
 *   anyway.
 */
async function settleStatistics(sql: Sql, schema: string): Promise<void> {
  const s = `"${schema}"`;
  // One statement each: VACUUM cannot run inside the implicit transaction of a multi-statement message.
  for (const table of ['portfolios', 'orders', 'trades', 'market_data', 'market_data_1h'])
    await sql.unsafe(`vacuum ${s}.${table}`);
  await sql.unsafe(
    `analyze ${s}.portfolios; analyze ${s}.orders; analyze ${s}.market_data; analyze ${s}.market_data_1h`,
  );
  await sql.begin(async (tx) => {
    // 300 rows per unit of the target: 1,000 samples 300,000, more than there are trades.
    await tx`set local default_statistics_target = 1000`;
    await tx.unsafe(`analyze ${s}.trades`);
  });
}
