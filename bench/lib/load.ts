/**
 * Open-loop load at a fixed rate: requests start on a fixed schedule whether or not
 * earlier ones have finished, and latency counts from the scheduled start, so a slow
 * server cannot hide its queueing (no coordinated omission).
 *
 * Not autocannon's rate limiter: it sends each connection's quota as a burst at the
 * start of every second, and its omission correction assumes 1/rate *milliseconds*
 * between requests, which fills the histogram with invented samples.
 *
 * @example
 * const r = await fixedRate({ url, rate: 200, seconds: 10, headers });
 */
import { Agent, request } from 'node:http';
import { summarize, type Summary } from './stats.ts';

export type FixedRateResult = { sent: number; errors: number; latency: Summary; firstError: string | null };

export async function fixedRate(options: {
  url: string;
  rate: number;
  seconds: number;
  headers?: Record<string, string>;
}): Promise<FixedRateResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL(options.url);
  const total = Math.round(options.rate * options.seconds);
  const interval = 1000 / options.rate;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const started = performance.now();
  const inFlight: Promise<void>[] = [];

  const one = (scheduled: number) =>
    new Promise<void>((resolve) => {
      const req = request(
        { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, headers: options.headers },
        (res) => {
          // A failure's body (its problem code and detail) says why; a success's is not needed.
          let body = '';
          if (res.statusCode === 200) res.resume();
          else res.setEncoding('utf8').on('data', (part: string) => (body += part));
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - scheduled);
            else {
              errors++;
              firstError ??= `HTTP ${res.statusCode} ${body.slice(0, 300)}`;
            }
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        errors++;
        firstError ??= err.message;
        resolve();
      });
      req.end();
    });

  for (let i = 0; i < total; i++) {
    const scheduled = started + i * interval;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(one(scheduled));
  }
  await Promise.all(inFlight);
  agent.destroy();
  return { sent: total, errors, latency: summarize(latencies.length ? latencies : [NaN]), firstError };
}
