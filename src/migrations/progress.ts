/**
 * How `tenantforge migrate` shows a run: a progress bar redrawn in place on a terminal
 * (done/total, failed, tenants/s, ETA), plain lines at most once a second otherwise.
 *
 * @example
 * const show = progressPrinter(process.stderr);
 * await migrateTenants(sql, { ...options, onProgress: show.update });
 * show.end();
 */
import type { Progress } from './runner.ts';

type Output = { isTTY?: boolean; columns?: number; write(text: string): unknown };

export function progressPrinter(out: Output, now: () => number = Date.now) {
  let last = -Infinity;
  let drawn = false;
  let latest: Progress | undefined;
  return {
    update(p: Progress): void {
      latest = p;
      const finished = p.done === p.total;
      if (!finished && now() - last < (out.isTTY ? 100 : 1_000)) return;
      last = now();
      if (out.isTTY) {
        out.write(`\r\x1b[2K${formatBar(p, Math.max(10, Math.min(40, (out.columns ?? 80) - 60)))}`);
        drawn = true;
      } else out.write(`${formatLine(p)}\n`);
    },
    end(): void {
      if (drawn) out.write('\n');
      else if (latest && latest.done !== latest.total) out.write(`${formatLine(latest)}\n`);
    },
  };
}

export function formatLine(p: Progress): string {
  const { rate, eta } = speed(p);
  return `migrate: ${p.done}/${p.total} tenants, ${p.failed} failed, ${rate.toFixed(1)} tenants/s, ETA ${eta}`;
}

export function formatBar(p: Progress, width: number): string {
  const filled = p.total ? Math.round((p.done / p.total) * width) : width;
  const { rate, eta } = speed(p);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}  failed ${p.failed}  ${rate.toFixed(1)}/s  ETA ${eta}`;
}

function speed(p: Progress): { rate: number; eta: string } {
  const rate = p.elapsedMs > 0 ? (p.done / p.elapsedMs) * 1000 : 0;
  const left = p.total - p.done;
  if (left === 0) return { rate, eta: '0s' };
  if (rate === 0) return { rate, eta: '?' };
  const s = Math.ceil(left / rate);
  return { rate, eta: s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s` };
}
