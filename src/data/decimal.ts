/**
 * Exact decimals for money and quantities: strings on the wire, BigInt scaled by 10^10
 * in memory (the columns are numeric(38, 10)). No float ever touches a price.
 *
 * @example
 * const cost = mul(parseDecimal('1.5'), parseDecimal('190.25'));   // scaled BigInt
 * formatDecimal(cost);                                             // '285.375'
 */
import { z } from 'zod';

export const SCALE = 10n;
const ONE = 10n ** SCALE;
const PATTERN = /^-?\d{1,28}(\.\d{1,10})?$/;

/** A decimal string field, e.g. "190.25". Negative values only where `signed`. */
export function decimalString(options: { positive?: boolean; signed?: boolean } = {}) {
  return z
    .string({ error: 'must be a decimal number sent as a string, e.g. "12.5"' })
    .regex(
      PATTERN,
      'must be a decimal number sent as a string with at most 28 integer and 10 fraction digits, e.g. "12.5"',
    )
    .refine((s) => options.signed || !s.startsWith('-'), 'must not be negative')
    .refine((s) => !options.positive || !PATTERN.test(s) || parseDecimal(s) > 0n, 'must be greater than zero');
}

export const isDecimal = (text: string) => PATTERN.test(text);

export function parseDecimal(text: string): bigint {
  if (!PATTERN.test(text)) throw new Error(`not a decimal: ${text}`);
  const negative = text.startsWith('-');
  const [whole, fraction = ''] = text.replace('-', '').split('.');
  const value = BigInt(whole!) * ONE + BigInt(fraction.padEnd(Number(SCALE), '0'));
  return negative ? -value : value;
}

/** Shortest exact string: "10", "190.5", "-0.25". */
export function formatDecimal(value: bigint): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = abs / ONE;
  const fraction = (abs % ONE).toString().padStart(Number(SCALE), '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export function mul(a: bigint, b: bigint): bigint {
  return roundDiv(a * b, ONE);
}

export function div(a: bigint, b: bigint): bigint {
  return roundDiv(a * ONE, b);
}

/** Division rounding half away from zero, as PostgreSQL's numeric does. */
function roundDiv(n: bigint, d: bigint): bigint {
  const negative = n < 0n !== d < 0n;
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  const q = (an * 2n + ad) / (ad * 2n);
  return negative ? -q : q;
}

export const abs = (v: bigint) => (v < 0n ? -v : v);
export const sign = (v: bigint) => (v > 0n ? 1n : v < 0n ? -1n : 0n);
export const min = (a: bigint, b: bigint) => (a < b ? a : b);
