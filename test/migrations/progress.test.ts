/**
 * The pieces of `tenantforge migrate` that need no database: the progress display (a
 * bar redrawn in place on a terminal, plain lines otherwise) and the lexer that finds
 * data statements outside a file's per-tenant section.
 */
import { describe, expect, it } from 'vitest';
import { splitMigration } from '../../src/migrations/files.ts';
import { formatBar, formatLine, progressPrinter } from '../../src/migrations/progress.ts';
import { isDataStatement, splitStatements } from '../../src/migrations/statements.ts';

const at = (done: number, failed = 0) => ({
  total: 100,
  done,
  migrated: done - failed,
  failed,
  skipped: 0,
  elapsedMs: done * 100,
});

describe('progress', () => {
  it('draws a bar with done/total, failures, rate and ETA', () => {
    expect(formatBar(at(50, 2), 10)).toBe('[#####.....] 50/100  failed 2  10.0/s  ETA 5s');
    expect(formatLine(at(25))).toBe('migrate: 25/100 tenants, 0 failed, 10.0 tenants/s, ETA 8s');
    expect(formatLine({ ...at(10), total: 10_000, elapsedMs: 1000 })).toMatch(/ETA 16m39s$/);
  });

  it('redraws in place on a terminal, and ends the line', () => {
    let clock = 0;
    const written: string[] = [];
    const show = progressPrinter({ isTTY: true, columns: 100, write: (s) => written.push(s) }, () => clock);
    show.update(at(1));
    clock = 50;
    show.update(at(2)); // within 100 ms: not drawn
    clock = 200;
    show.update(at(100));
    show.end();
    expect(written).toHaveLength(3);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the progress line starts with an ANSI escape
    expect(written[0]).toMatch(/^\r\x1b\[2K\[#?\.+\] 1\/100/);
    expect(written[1]).toMatch(/100\/100 {2}failed 0/);
    expect(written[2]).toBe('\n');
  });

  it('writes plain lines, at most one a second, otherwise', () => {
    let clock = 0;
    const written: string[] = [];
    const show = progressPrinter({ write: (s) => written.push(s) }, () => clock);
    show.update(at(1));
    clock = 500;
    show.update(at(5));
    clock = 1_600;
    show.update(at(9));
    show.end();
    expect(written).toEqual([`${formatLine(at(1))}\n`, `${formatLine(at(9))}\n`, `${formatLine(at(9))}\n`]);
    expect(written.join('')).not.toContain('\r');
  });
});

describe('statements', () => {
  it('splits on top-level semicolons only, with the line each starts on', () => {
    const sql =
      "-- header\ncreate table t (x text default ';');\ndo $$ begin perform 1; end $$;\n/* c; */ update t set x = 'a;b';\nselect \"odd;name\" from t";
    expect(splitStatements(sql).map((s) => [s.line, s.text.split(/\s/)[0]])).toEqual([
      [2, 'create'],
      [3, 'do'],
      [4, 'update'],
      [5, 'select'],
    ]);
  });

  it('tells data statements from structure', () => {
    for (const s of [
      'update t set x = 1',
      'insert into t values (1)',
      'delete from t',
      'with x as (select 1) update t set y = 2',
      'truncate t',
      '(update t set x = 1)',
    ]) {
      expect(isDataStatement(s), s).toBe(true);
    }
    for (const s of [
      'alter table t add column x text',
      'create index i on t (x)',
      "select create_hypertable('t', 'at')",
      'do $$ begin end $$',
    ]) {
      expect(isDataStatement(s), s).toBe(false);
    }
  });

  it('splits a file at its per-tenant marker', () => {
    expect(
      splitMigration('alter table t add column x text;\n  -- tenantforge:per-tenant\nupdate t set x = 1;\n'),
    ).toEqual({
      structure: 'alter table t add column x text;\n',
      data: '\nupdate t set x = 1;\n',
    });
    expect(splitMigration('alter table t add column x text;')).toEqual({
      structure: 'alter table t add column x text;',
      data: null,
    });
  });
});
