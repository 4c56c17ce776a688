/**
 * Recording fills (trades): in one tenant transaction, the trades are stored, each
 * portfolio position moves (quantity, average price, realized P&L, in execution order)
 * and each referenced order's fill state advances. Any bad row rejects the whole batch,
 * naming the row, and nothing is stored.
 *
 * @example
 * const result = await recordFills(tx, [{ portfolioId, symbol: 'AAPL', side: 'buy', quantity: '10', price: '190.5', executedAt }]);
 */
import type { z } from 'zod';
import type { TenantSql } from '../db/with-tenant.ts';
import { AppError } from '../errors.ts';
import { abs, div, formatDecimal, mul, parseDecimal } from './decimal.ts';
import { applyFill, type Position } from './positions-math.ts';
import type { positionView } from './common.ts';

export type FillInput = {
  portfolioId: string;
  orderId?: string;
  symbol: string;
  side: 'buy' | 'sell';
  quantity: string;
  price: string;
  fee?: string;
  executedAt: string;
};

export type PositionView = z.infer<typeof positionView>;

type OrderRow = {
  id: string;
  portfolio_id: string;
  symbol: string;
  side: string;
  status: string;
  quantity: string;
  filled_quantity: string;
  average_fill_price: string | null;
};

/** `field` is the request path of the list (`trades` for a batch, '' for a single trade). */
export async function recordFills(
  tx: TenantSql,
  fills: FillInput[],
  field: string,
): Promise<{ ids: string[]; positions: PositionView[] }> {
  const where = (i: number, name: string) => ({
    field: field ? `${field}.${i}.${name}` : name,
    ...(field ? { index: i } : {}),
  });

  // The portfolio check, the order locks and the position rows are sent together (one
  // round trip), in the order locks are always taken: orders by id, then positions.
  // Positions are created first, then locked: two batches touching one new position
  // serialise here instead of overwriting each other.
  const portfolioIds = [...new Set(fills.map((f) => f.portfolioId))];
  const orderIds = [...new Set(fills.flatMap((f) => (f.orderId ? [f.orderId] : [])))];
  const keys = [...new Map(fills.map((f) => [`${f.portfolioId}/${f.symbol}`, f])).values()];
  const portfolios = keys.map((k) => k.portfolioId);
  const symbols = keys.map((k) => k.symbol);
  const sent = [
    tx<{ id: string }[]>`select id from portfolios where id = any(${portfolioIds}::uuid[])`.execute(),
    orderIds.length
      ? tx<OrderRow[]>`
          select id, portfolio_id, symbol, side, status, quantity::text, filled_quantity::text, average_fill_price::text
          from orders where id = any(${orderIds}::uuid[]) order by id for update`.execute()
      : Promise.resolve([]),
    tx`
      insert into positions (portfolio_id, symbol)
      select * from unnest(${portfolios}::uuid[], ${symbols}::text[]) on conflict do nothing`.execute(),
    tx<{ portfolio_id: string; symbol: string; quantity: string; average_price: string; realized_pnl: string }[]>`
      select portfolio_id, symbol, quantity::text, average_price::text, realized_pnl::text from positions
      where (portfolio_id, symbol) in (select * from unnest(${portfolios}::uuid[], ${symbols}::text[]))
      order by portfolio_id, symbol for update`.execute(),
  ] as const;
  const [found, locked, created, current] = await Promise.allSettled(sent);
  // A missing portfolio also fails its position insert: the 404 is the answer, not that.
  if (found.status === 'fulfilled') {
    const known = new Set(found.value.map((r) => r.id));
    const unknown = fills.findIndex((f) => !known.has(f.portfolioId));
    if (unknown >= 0) {
      throw new AppError(
        404,
        'portfolio_not_found',
        'Portfolio not found',
        `no portfolio ${JSON.stringify(fills[unknown]!.portfolioId)}`,
        where(unknown, 'portfolioId'),
      );
    }
  }
  // Otherwise the first failure explains the rest, which only say "transaction aborted".
  const failed = [found, locked, created, current].find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  const orderUpdates = advanceOrders(fills, new Map(settled(locked).map((r) => [r.id, r])), where);
  const positions = new Map<string, Position>(
    settled(current).map((p) => [
      `${p.portfolio_id}/${p.symbol}`,
      {
        quantity: parseDecimal(p.quantity),
        averagePrice: parseDecimal(p.average_price),
        realizedPnl: parseDecimal(p.realized_pnl),
      },
    ]),
  );
  const inOrder = fills
    .map((f, i) => ({ f, i, at: Date.parse(f.executedAt) }))
    .sort((a, b) => a.at - b.at || a.i - b.i);
  for (const { f } of inOrder) {
    const key = `${f.portfolioId}/${f.symbol}`;
    positions.set(
      key,
      applyFill(positions.get(key)!, {
        side: f.side,
        quantity: parseDecimal(f.quantity),
        price: parseDecimal(f.price),
        fee: parseDecimal(f.fee ?? '0'),
      }),
    );
  }
  const changed = [...positions.entries()].map(([key, p]) => {
    const [portfolioId, symbol] = splitKey(key);
    return {
      portfolioId,
      symbol,
      quantity: formatDecimal(p.quantity),
      averagePrice: formatDecimal(p.averagePrice),
      realizedPnl: formatDecimal(p.realizedPnl),
    };
  });

  const [inserted] = await Promise.all([
    tx<{ id: string }[]>`
      insert into trades (portfolio_id, order_id, symbol, side, quantity, price, fee, executed_at)
      select portfolio_id, order_id, symbol, side, quantity, price, coalesce(fee, 0), executed_at
      from jsonb_to_recordset(${tx.json(fills.map(toRecord))}) as x(
        ord int, portfolio_id uuid, order_id uuid, symbol text, side text, quantity numeric, price numeric, fee numeric, executed_at timestamptz)
      order by ord
      returning id`,
    tx`
      update positions p set quantity = x.quantity, average_price = x."averagePrice", realized_pnl = x."realizedPnl"
      from jsonb_to_recordset(${tx.json(changed)}) as x("portfolioId" uuid, symbol text, quantity numeric, "averagePrice" numeric, "realizedPnl" numeric)
      where p.portfolio_id = x."portfolioId" and p.symbol = x.symbol`.then(() => undefined),
    orderUpdates.length
      ? tx`
          update orders o set filled_quantity = x.filled, average_fill_price = x.average, status = x.status
          from jsonb_to_recordset(${tx.json(orderUpdates)}) as x(id uuid, filled numeric, average numeric, status text)
          where o.id = x.id`.then(() => undefined)
      : undefined,
  ]);
  return { ids: inserted.map((r) => r.id), positions: changed };
}

function toRecord(f: FillInput, ord: number) {
  return {
    ord,
    portfolio_id: f.portfolioId,
    order_id: f.orderId ?? null,
    symbol: f.symbol,
    side: f.side,
    quantity: f.quantity,
    price: f.price,
    fee: f.fee ?? null,
    executed_at: f.executedAt,
  };
}

/** The value of a promise settled without error (checked before). */
function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

const splitKey = (key: string) => [key.slice(0, 36), key.slice(37)] as const;

/** New fill state of each referenced order; throws naming the first row that cannot apply. */
function advanceOrders(
  fills: FillInput[],
  orders: Map<string, OrderRow>,
  where: (i: number, name: string) => { field: string; index?: number },
) {
  const state = new Map<string, { filled: bigint; notional: bigint; quantity: bigint }>();
  fills.forEach((f, i) => {
    if (!f.orderId) return;
    const order = orders.get(f.orderId);
    if (!order)
      throw new AppError(
        404,
        'order_not_found',
        'Order not found',
        `no order ${JSON.stringify(f.orderId)}`,
        where(i, 'orderId'),
      );
    if (order.portfolio_id !== f.portfolioId || order.symbol !== f.symbol || order.side !== f.side) {
      throw new AppError(
        409,
        'fill_does_not_match_order',
        'Fill does not match its order',
        "a fill must have its order's portfolio, symbol and side",
        where(i, 'orderId'),
      );
    }
    if (order.status === 'cancelled' || order.status === 'filled') {
      throw new AppError(
        409,
        'illegal_transition',
        'Illegal order transition',
        `order ${order.id} is ${order.status} and takes no more fills`,
        where(i, 'orderId'),
      );
    }
    const s = state.get(order.id) ?? {
      filled: parseDecimal(order.filled_quantity),
      notional: mul(parseDecimal(order.filled_quantity), parseDecimal(order.average_fill_price ?? '0')),
      quantity: parseDecimal(order.quantity),
    };
    const quantity = parseDecimal(f.quantity);
    s.filled += quantity;
    s.notional += mul(quantity, parseDecimal(f.price));
    if (s.filled > s.quantity) {
      throw new AppError(
        409,
        'overfill',
        'Fill exceeds the order',
        `fills would take order ${order.id} to ${formatDecimal(s.filled)} of ${formatDecimal(s.quantity)}`,
        where(i, 'quantity'),
      );
    }
    state.set(order.id, s);
  });
  return [...state.entries()].map(([id, s]) => ({
    id,
    filled: formatDecimal(s.filled),
    average: formatDecimal(div(s.notional, abs(s.filled))),
    status: s.filled === s.quantity ? 'filled' : 'partially_filled',
  }));
}
