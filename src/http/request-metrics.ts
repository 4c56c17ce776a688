/**
 * Request rate, errors and latency of this instance, per route: what an on-call engineer
 * looks at first. Routes are labelled by their template (`/v1/tenants/{idOrSlug}`), never
 * by the path a caller sent, and a path no route matches counts as `unmatched`, so a
 * scanner cannot grow the series without bound; tenants are not a label (10,000 of them
 * would be 10,000 series per route).
 *
 * @example
 * const requests = new RequestMetrics();
 * requests.record('GET', '/v1/orders', 200, 0.004);
 * requests.render(text); // tenantforge_http_requests_total{method="GET",route="/v1/orders",status="200"} 1
 */
import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import { labels, type MetricsText } from './prometheus.ts';

/** Upper bounds in seconds: a data-plane read takes a few ms; provisioning, backups and batches longer. */
const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

type Series = { method: string; route: string; statuses: Map<number, number>; counts: number[]; sum: number };

export class RequestMetrics {
  readonly #series = new Map<string, Series>();

  record(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route}`;
    let series = this.#series.get(key);
    if (!series) {
      series = { method, route, statuses: new Map(), counts: new Array(BOUNDS.length + 1).fill(0), sum: 0 };
      this.#series.set(key, series);
    }
    series.statuses.set(status, (series.statuses.get(status) ?? 0) + 1);
    let bucket = BOUNDS.findIndex((bound) => seconds <= bound);
    if (bucket === -1) bucket = BOUNDS.length;
    series.counts[bucket]!++;
    series.sum += seconds;
  }

  render(text: MetricsText): MetricsText {
    const all = [...this.#series.values()];
    return text
      .counter(
        'tenantforge_http_requests_total',
        'HTTP requests this instance answered, by route template and status.',
        all.flatMap((s) =>
          [...s.statuses].map(([status, n]): [string, number] => [
            labels({ method: s.method, route: s.route, status: String(status) }),
            n,
          ]),
        ),
      )
      .histogram(
        'tenantforge_http_request_duration_seconds',
        'How long this instance took to answer, by route template.',
        BOUNDS,
        all.map((s) => ({ labels: { method: s.method, route: s.route }, counts: s.counts, sum: s.sum })),
      );
  }
}

/** The template of the route that answered the request, as the OpenAPI document writes it, or `unmatched`. */
export function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  // Middleware is registered for every method; only a route handler names one.
  for (let i = routes.length - 1; i >= 0; i--)
    // Only a whole segment is a parameter: `/v1/trades:batch` is a literal path.
    if (routes[i]!.method !== 'ALL') return routes[i]!.path.replace(/\/:(\w+)/g, '/{$1}');
  return 'unmatched';
}
