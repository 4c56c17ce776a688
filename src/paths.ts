/**
 * Absolute paths of the project's own files, wherever the process was started from and
 * whether it runs the TypeScript sources (`src/`) or the build (`dist/src/`): the root is
 * the nearest folder above this file that holds package.json, so `sql/` and `drizzle/`
 * are found from both.
 *
 * @example
 * const folder = join(projectRoot, 'sql');
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}: the tenantforge files are incomplete`);
  }
}

export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)));
