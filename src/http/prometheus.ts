/**
 * Prometheus text for `GET /metrics`: each metric's HELP and TYPE lines, then its
 * samples. A sample whose value is null or undefined is left out, while its metric is
 * still declared: "not measured yet" stays distinguishable from a real zero.
 *
 * @example
 * const text = new MetricsText();
 * text.gauge('tenantforge_backup_jobs', 'Backup jobs by state.', [['{status="queued"}', 3]]);
 * text.toString(); // "# HELP tenantforge_backup_jobs ...\n# TYPE ... gauge\ntenantforge_backup_jobs{status=\"queued\"} 3\n"
 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Labels as written in the exposition (`''` or `{name="value",...}`), and the value. */
export type Sample = [labels: string, value: number | null | undefined];

export class MetricsText {
  readonly #lines: string[] = [];

  gauge(name: string, help: string, samples: Sample[]): this {
    return this.#metric(name, 'gauge', help, samples);
  }

  /** A count that only grows while the process lives (Prometheus handles its resets). */
  counter(name: string, help: string, samples: Sample[]): this {
    return this.#metric(name, 'counter', help, samples);
  }

  toString(): string {
    return this.#lines.join('\n') + '\n';
  }

  #metric(name: string, type: 'gauge' | 'counter', help: string, samples: Sample[]): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples)
      if (value !== null && value !== undefined) this.#lines.push(`${name}${labels} ${value}`);
    return this;
  }
}
