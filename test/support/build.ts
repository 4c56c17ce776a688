/**
 * The service as production runs it: compiled by `tsc -p tsconfig.build.json` (what
 * `npm run build` does) into a folder of its own under `.scratch/` (inside the project,
 * so `sql/` and `drizzle/` are found above it, and never a half-written `dist/` that other
 * CLI runs would pick up), run with plain Node. `bin/tenantforge` in a tree without
 * `dist/` runs the sources through tsx instead, whose loader alone holds about 40 MB.
 *
 * @example
 * const build = await buildService();
 * spawn(process.execPath, [build.main, 'serve'], { env });
 * build.remove();
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/paths.ts';

export type ServiceBuild = { outDir: string; main: string; remove(): void };

export async function buildService(): Promise<ServiceBuild> {
  const scratch = join(projectRoot, '.scratch');
  mkdirSync(scratch, { recursive: true });
  const outDir = mkdtempSync(join(scratch, 'build-'));
  const tsc = join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(
    process.execPath,
    [tsc, '-p', join(projectRoot, 'tsconfig.build.json'), '--outDir', outDir],
    { cwd: projectRoot },
  );
  return {
    outDir,
    main: join(outDir, 'src', 'cli', 'main.js'),
    remove: () => rmSync(outDir, { recursive: true, force: true }),
  };
}
