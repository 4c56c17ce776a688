/**
 * `npm run bench:readme`: rewrites the README's Performance table from bench/results.
 * `--check` only compares, and exits 1 when the README is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performanceTable, readResults, replaceBetweenMarkers } from './lib/readme-table.ts';
import { projectRoot } from '../src/paths.ts';

const readmePath = join(projectRoot, 'README.md');
const current = readFileSync(readmePath, 'utf8');
const wanted = replaceBetweenMarkers(current, performanceTable(readResults(join(projectRoot, 'bench', 'results'))));
if (process.argv.includes('--check')) {
  if (wanted !== current) {
    console.error('bench:readme: README.md Performance table differs from bench/results; run npm run bench:readme');
    process.exit(1);
  }
  console.log('bench:readme: README.md matches bench/results');
} else {
  writeFileSync(readmePath, wanted);
  console.log('bench:readme: README.md Performance table rewritten from bench/results');
}
