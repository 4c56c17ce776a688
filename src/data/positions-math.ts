/**
 * How a fill changes a position: quantity, average price and realized P&L, for longs
 * and shorts, including a fill that closes a position and opens the opposite one.
 * Fees reduce realized P&L. All values are scaled BigInts (see decimal.ts).
 *
 * @example
 * applyFill({ quantity: 10n*S, averagePrice: 100n*S, realizedPnl: 0n }, { side: 'sell', quantity: 4n*S, price: 110n*S, fee: 0n })
 * // -> quantity 6, average 100, realized +40
 */
import { abs, div, min, mul, sign } from './decimal.ts';

export type Position = { quantity: bigint; averagePrice: bigint; realizedPnl: bigint };
export type Fill = { side: 'buy' | 'sell'; quantity: bigint; price: bigint; fee: bigint };

export function applyFill(position: Position, fill: Fill): Position {
  const delta = fill.side === 'buy' ? fill.quantity : -fill.quantity;
  const { quantity: q, averagePrice: avg } = position;
  const next = q + delta;
  const realizedAfterFee = position.realizedPnl - fill.fee;

  // Opening or adding to a position: the average price moves, nothing is realized.
  if (q === 0n || sign(q) === sign(delta)) {
    const averagePrice = div(mul(abs(q), avg) + mul(abs(delta), fill.price), abs(next));
    return { quantity: next, averagePrice, realizedPnl: realizedAfterFee };
  }
  // Reducing, closing or flipping: the closed part realizes (price - average) per unit.
  const closed = min(abs(q), abs(delta));
  const realized = realizedAfterFee + sign(q) * mul(closed, fill.price - avg);
  const averagePrice = next === 0n ? 0n : sign(next) === sign(q) ? avg : fill.price;
  return { quantity: next, averagePrice, realizedPnl: realized };
}
