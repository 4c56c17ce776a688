/**
 * A validator report as text for people (the CLI without `--json`): a summary line,
 * then each violation with its tenant, rule and fix, then what `--fix` did.
 *
 * @example
 * console.log(formatReport(await validate(sql)));
 */
import { CHECK_NAMES } from './checks/catalog.ts';
import type { IsolationReport } from './validator.ts';

export function formatReport(report: IsolationReport): string {
  const scope = report.scope.tenant ? `tenant ${report.scope.tenant}` : `${report.tenantsChecked} tenant(s)`;
  const lines = [
    report.outcome === 'clean'
      ? `tenant isolation: clean: ${scope}, ${CHECK_NAMES.length} checks (${report.durationMs} ms)`
      : `tenant isolation: ${report.violations.length} violation(s) across ${scope} (${report.durationMs} ms)`,
  ];
  for (const v of report.violations) {
    lines.push('', `${v.check}: ${v.rule}`);
    if (v.tenantId) lines.push(`  tenant: ${v.tenantSlug} (${v.tenantId})`);
    lines.push(`  fix:    ${v.fix}${v.autofix ? '' : '   (not applied by --fix)'}`);
  }
  for (const n of report.notChecked) lines.push('', `not checked: ${n.tenantSlug} (${n.tenantId}): ${n.reason}`);
  if (report.fixes) {
    const failed = report.fixes.filter((f) => !f.applied);
    lines.push(
      '',
      `--fix applied ${report.fixes.length - failed.length} of ${report.fixes.length} repair(s), then checked again`,
    );
    for (const f of failed) lines.push(`  failed: ${f.sql}: ${f.error}`);
  }
  return lines.join('\n');
}
