/**
 * The shape of the code, read from the sources (no database): the toolkit folders
 * (`db/`, `http/`, `runtime/`) never import a feature folder, and no folder imports the
 * composition at the top (`app.ts`, `health.ts`, `platform.ts`, `server.ts`) but the
 * command line; advisory lock keys are spelled only in `db/locks.ts`; SQLSTATEs are
 * compared only through `db/sqlstate.ts`.
 *
 * @example
 * npx vitest run test/foundation/architecture.test.ts
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.ts';

const SRC = join(projectRoot, 'src');
const TOOLKIT = ['db', 'http', 'runtime'];
const FEATURES = ['data', 'tenants', 'provisioning', 'backup', 'migrations', 'isolation'];
/** Top-level modules that wire features together; only the command line (and each other) may import them. */
const COMPOSITION = ['app.ts', 'health.ts', 'platform.ts', 'server.ts'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1]!);
  return found;
}

/** Relative imports between files of src/, as `from -> to` paths relative to src/. */
function importEdges(): [string, string][] {
  const edges: [string, string][] = [];
  for (const file of sourceFiles(SRC)) {
    const from = relative(SRC, file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) edges.push([from, relative(SRC, resolve(dirname(file), spec))]);
    }
  }
  return edges;
}

const folderOf = (path: string) => (path.includes('/') ? path.split('/')[0]! : '');

/** Imports from a toolkit folder into a feature folder. */
function upwardImports(): string[] {
  return importEdges()
    .filter(([from, to]) => TOOLKIT.includes(folderOf(from)) && FEATURES.includes(folderOf(to)))
    .map(([from, to]) => `${from} -> ${to}`)
    .sort();
}

/** Imports of the composition from a folder other than the command line. */
function compositionImports(): string[] {
  return importEdges()
    .filter(([from, to]) => folderOf(from) !== '' && folderOf(from) !== 'cli' && COMPOSITION.includes(to))
    .map(([from, to]) => `${from} -> ${to}`)
    .sort();
}

describe('import direction', () => {
  it('finds imports of every form (so the check below can fail)', () => {
    const source = `import { a } from '../data/x.ts';\nimport type { B } from "../tenants/y.ts";\nexport * from '../backup/z.ts';\nconst m = await import('../isolation/w.ts');\nimport '../migrations/v.ts';`;
    expect(specifiers(source).sort()).toEqual([
      '../backup/z.ts',
      '../data/x.ts',
      '../isolation/w.ts',
      '../migrations/v.ts',
      '../tenants/y.ts',
    ]);
  });

  it('the toolkit folders (db/, http/, runtime/) import no feature folder', () => {
    expect(upwardImports()).toEqual([]);
  });

  it('no feature or toolkit module imports the composition (app.ts, health.ts, platform.ts, server.ts)', () => {
    expect(compositionImports()).toEqual([]);
  });
});

describe('one place for names the database keys on', () => {
  const files = sourceFiles(SRC).map((path) => ({ path: relative(SRC, path), text: readFileSync(path, 'utf8') }));

  it('advisory lock keys are spelled only in db/locks.ts', () => {
    const spelled = files.filter(
      (f) => f.path !== 'db/locks.ts' && /hashtext\(\s*'|'tenantforge:(?!per-tenant)[a-z-]+(:[a-z-]+)*'/.test(f.text),
    );
    expect(spelled.map((f) => f.path)).toEqual([]);
  });

  it('SQLSTATEs are compared by name (db/sqlstate.ts), never as bare strings', () => {
    const bare = /(?:===|!==|case)\s*'[0-9A-Z]{5}'|new Set(?:<[^>]*>)?\(\[\s*'[0-9A-Z]{5}'/;
    expect(bare.test("if (e.code === '23505')"), 'the pattern catches a bare comparison').toBe(true);
    const offenders = files.filter((f) => f.path !== 'db/sqlstate.ts' && bare.test(f.text));
    expect(offenders.map((f) => f.path)).toEqual([]);
  });
});
