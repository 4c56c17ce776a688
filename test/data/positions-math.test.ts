import { describe, expect, it } from 'vitest';
import { formatDecimal, parseDecimal } from '../../src/data/decimal.ts';
import { applyFill, type Fill, type Position } from '../../src/data/positions-math.ts';

const d = parseDecimal;
const show = (p: Position) => ({
  quantity: formatDecimal(p.quantity),
  averagePrice: formatDecimal(p.averagePrice),
  realizedPnl: formatDecimal(p.realizedPnl),
});
const fill = (side: Fill['side'], quantity: string, price: string, fee = '0'): Fill => ({
  side,
  quantity: d(quantity),
  price: d(price),
  fee: d(fee),
});
const flat: Position = { quantity: 0n, averagePrice: 0n, realizedPnl: 0n };

function run(...fills: Fill[]) {
  return show(fills.reduce(applyFill, flat));
}

describe('decimals', () => {
  it('round-trips exactly and prints the shortest form', () => {
    for (const s of ['0', '10', '190.5', '-0.25', '0.0000000001', '9999999999999999999999999999.9999999999'])
      expect(formatDecimal(d(s))).toBe(s);
    expect(formatDecimal(d('10.5000'))).toBe('10.5');
    expect(() => d('1e5')).toThrow();
    expect(() => d('0.12345678901')).toThrow();
  });
});

describe('position math', () => {
  it('averages the price of buys', () => {
    expect(run(fill('buy', '10', '100'), fill('buy', '30', '120'))).toEqual({
      quantity: '40',
      averagePrice: '115',
      realizedPnl: '0',
    });
  });

  it('realizes profit on a partial sell and keeps the average', () => {
    expect(run(fill('buy', '10', '100'), fill('sell', '4', '110'))).toEqual({
      quantity: '6',
      averagePrice: '100',
      realizedPnl: '40',
    });
  });

  it('closes to flat with a zero average', () => {
    expect(run(fill('buy', '10', '100'), fill('sell', '10', '90'))).toEqual({
      quantity: '0',
      averagePrice: '0',
      realizedPnl: '-100',
    });
  });

  it('flips from long to short at the fill price', () => {
    expect(run(fill('buy', '10', '100'), fill('sell', '15', '105'))).toEqual({
      quantity: '-5',
      averagePrice: '105',
      realizedPnl: '50',
    });
  });

  it('handles shorts: covering lower is a profit', () => {
    expect(run(fill('sell', '10', '50'), fill('buy', '4', '40'))).toEqual({
      quantity: '-6',
      averagePrice: '50',
      realizedPnl: '40',
    });
  });

  it('subtracts fees from realized P&L', () => {
    expect(run(fill('buy', '1', '100', '0.5'), fill('sell', '1', '101', '0.5'))).toEqual({
      quantity: '0',
      averagePrice: '0',
      realizedPnl: '0',
    });
  });

  it('rounds an average that does not divide evenly to 10 places', () => {
    expect(run(fill('buy', '1', '1'), fill('buy', '2', '2'))).toEqual({
      quantity: '3',
      averagePrice: '1.6666666667',
      realizedPnl: '0',
    });
  });
});
