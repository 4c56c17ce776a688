/**
 * Prometheus text for `GET /metrics`: each metric's HELP and TYPE lines, then its
 * samples. A sample whose value is null or undefined is left out, while its metric is
 * still declared: "not measured yet" stays distinguishable from a real zero.
 *
 * @example
 * const text = new MetricsText();
 * text.gauge('tenantforge_backup_jobs', 'Backup jobs by state.', [['{status="queued"}', 3]]);
 * text.gauge('tenantforge_backup_configured', 'Whether a store is configured.', 1); // one unlabelled sample
 * text.toString(); // "# HELP tenantforge_backup_jobs ...\n# TYPE ... gauge\ntenantforge_backup_jobs{status=\"queued\"} 3\n"
 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Labels as written in the exposition (`''` or `{name="value",...}`, see `labels`), and the value. */
export type Sample = [labels: string, value: number | null | undefined];
/** Labelled samples, or the value of a metric's one unlabelled sample. */
export type Samples = Sample[] | Sample[1];

/** One labelled histogram: counts per bucket (not cumulative; the last one is +Inf), their sum of values. */
export type HistogramSeries = { labels: Record<string, string>; counts: readonly number[]; sum: number };

/** `{name="value",...}` with the values escaped as the exposition format requires. */
export function labels(values: Record<string, string>): string {
  const pairs = Object.entries(values).map(
    ([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return pairs.length ? `{${pairs.join(',')}}` : '';
}

export class MetricsText {
  readonly #lines: string[] = [];

  gauge(name: string, help: string, samples: Samples): this {
    return this.#metric(name, 'gauge', help, samples);
  }

  /** A count that only grows while the process lives (Prometheus handles its resets). */
  counter(name: string, help: string, samples: Samples): this {
    return this.#metric(name, 'counter', help, samples);
  }

  /** `bounds`: the buckets' upper bounds, ascending; each series has one count more (+Inf). */
  histogram(name: string, help: string, bounds: readonly number[], series: HistogramSeries[]): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    for (const s of series) {
      let cumulative = 0;
      [...bounds.map(String), '+Inf'].forEach((le, i) => {
        cumulative += s.counts[i] ?? 0;
        this.#lines.push(`${name}_bucket${labels({ ...s.labels, le })} ${cumulative}`);
      });
      this.#lines.push(`${name}_sum${labels(s.labels)} ${s.sum}`, `${name}_count${labels(s.labels)} ${cumulative}`);
    }
    return this;
  }

  toString(): string {
    return this.#lines.join('\n') + '\n';
  }

  #metric(name: string, type: 'gauge' | 'counter', help: string, samples: Samples): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of Array.isArray(samples) ? samples : [['', samples] as Sample])
      if (value !== null && value !== undefined) this.#lines.push(`${name}${labels} ${value}`);
    return this;
  }
}
