/**
 * Runs the real `tenantforge` command line in a child process, as an operator would.
 *
 * @example
 * const { code, stderr } = await runCli(['migrate'], { DATABASE_URL: url });
 * const server = startCli(['serve'], env); await server.waitForLog(/serving/); server.kill('SIGTERM');
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.ts';

const CLI = join(projectRoot, 'bin', 'tenantforge');

/** The child's environment: only what the test gives, plus PATH and HOME (and no warm pool unless asked). */
function childEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TENANTFORGE_WARM_POOL: '0', ...env };
}

export type CliResult = { code: number | null; stdout: string; stderr: string; ms: number };

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(CLI, args, { env: childEnv(env), timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

export type RunningCli = {
  child: ChildProcess;
  output(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
};

export function startCli(args: string[], env: Record<string, string>): RunningCli {
  const child = spawn(CLI, args, { env: childEnv(env) });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    output += d;
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    waitForLog: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(output)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${pattern}; output so far:\n${output}`));
        }, timeoutMs);
        listeners.add(check);
        exited.then(() => {
          if (!pattern.test(output)) reject(new Error(`process exited before ${pattern}; output:\n${output}`));
        });
        check();
      }),
  };
}
