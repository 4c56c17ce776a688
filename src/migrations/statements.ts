/**
 * A small SQL lexer for template files: splits a file into top-level statements
 * (respecting quotes, dollar quotes and comments) and says which ones change rows.
 * It does not parse SQL (PostgreSQL does that, on the template, before any tenant is
 * touched); it only finds data statements where the file's structural part is diffed.
 *
 * @example
 * splitStatements("create table t (x int); update t set x = 1;") // [{ text: 'create table t (x int)', line: 1 }, ...]
 * isDataStatement('update t set x = 1')                            // true
 */

export type Statement = { text: string; line: number };

export function splitStatements(sql: string): Statement[] {
  const out: Statement[] = [];
  let start = 0;
  let i = 0;
  const push = (end: number) => {
    const raw = sql.slice(start, end);
    const text = stripComments(raw).trim();
    if (text) out.push({ text, line: lineAt(sql, start + leadingNoise(raw)) });
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? sql.length : nl + 1;
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j++;
      }
      i = j + 1;
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? sql.length : end + tag[0].length;
      } else i++;
    } else if (c === ';') {
      push(i);
      start = ++i;
    } else i++;
  }
  push(sql.length);
  return out;
}

const DATA_KEYWORDS = new Set(['insert', 'update', 'delete', 'merge', 'copy', 'truncate', 'with']);

/** Whether a statement changes (or may change) rows rather than structure. */
export function isDataStatement(text: string): boolean {
  const first = /^[\s(]*([A-Za-z]+)/.exec(text)?.[1]?.toLowerCase();
  return first !== undefined && DATA_KEYWORDS.has(first);
}

function stripComments(text: string): string {
  return text.replace(/^(\s*(--[^\n]*\n?|\/\*[\s\S]*?\*\/))+/, '');
}

function leadingNoise(text: string): number {
  return text.length - stripComments(text).replace(/^\s+/, '').length;
}

export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === '\n') line++;
  return line;
}
