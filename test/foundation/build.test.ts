/**
 * The build: `tsc -p tsconfig.build.json` compiles the sources to JavaScript that runs on
 * plain Node (no tsx), finds `sql/` and `drizzle/` from its own folder, and serves. The
 * build (`test/support/build.ts`) goes to a folder of its own under .scratch/ (inside the project), so
 * CLI tests running beside this one never pick up a half-written dist/.
 *
 * @example
 * npx vitest run test/foundation/build.test.ts
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/runtime/local-cluster.ts';
import { buildService, type ServiceBuild } from '../support/build.ts';
import { freshDatabase } from '../support/platform.ts';

const run = promisify(execFile);
let build: ServiceBuild | undefined;
let outDir = '';
let main = '';

beforeAll(async () => {
  build = await buildService();
  ({ outDir, main } = build);
}, 300_000);

afterAll(() => build?.remove());

describe('the compiled build', () => {
  it('has rewritten every relative import to .js, so plain Node loads it', () => {
    expect(existsSync(main)).toBe(true);
    const source = readFileSync(join(outDir, 'src', 'db', 'with-tenant.js'), 'utf8');
    expect(source).not.toMatch(/from '\.{1,2}\/[^']*\.ts'|from "\.{1,2}\/[^"]*\.ts"/);
  });

  it('runs the CLI without tsx: `--help` prints the usage', async () => {
    const { stdout } = await run(process.execPath, [main, '--help'], { env: { PATH: process.env.PATH ?? '' } });
    expect(stdout).toMatch(/usage: tenantforge <command>/);
  });

  it('serves from the build: migrates from sql/ and drizzle/, then /healthz and /readyz answer 200', async () => {
    const db = await freshDatabase();
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'tf-build-data-'));
    // No --import, no loader: the compiled JavaScript on plain Node.
    const child = spawn(process.execPath, [main, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        DATABASE_URL: db.url,
        PORT: String(port),
        TENANTFORGE_DATA_DIR: dataDir,
        TENANTFORGE_APP_PASSWORD: inject('appPassword'),
        TENANTFORGE_WARM_POOL: '0',
      },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    try {
      const deadline = Date.now() + 90_000;
      while (!/tenantforge is serving/.test(output)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the build did not serve:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      const token = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).adminToken;
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`, { headers: { authorization: `Bearer ${token}` } });
      const body = await ready.json();
      expect(ready.status, JSON.stringify(body)).toBe(200);
      expect(body.extensions).toMatchObject({ timescaledb: expect.any(String), vector: expect.any(String) });
    } finally {
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
      await db.drop();
    }
  }, 240_000);
});
