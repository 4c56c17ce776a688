/**
 * The parts that make the service fail fast and recover during a database outage,
 * against real connections: a port nothing listens on (the database is gone) and the
 * run's PostgreSQL (it is back). The chaos test runs them all together against a killed
 * and restarted server; these pin each behaviour down on its own.
 */
import { describe, expect, inject, it } from 'vitest';
import { DatabaseAvailability, DatabaseDownError } from '../../src/db/availability.ts';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { freePort } from '../../src/runtime/local-cluster.ts';
import { startPeriodic } from '../../src/db/periodic.ts';
import { backoffMs, isDatabaseUnavailable } from '../../src/db/unavailable.ts';
import { startValidatorJob } from '../../src/isolation/job.ts';
import { createLogger } from '../../src/log.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A logger whose lines the test can read. */
function recordingLog() {
  const lines: { level: number; msg: string }[] = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines, messages: () => lines.map((l) => l.msg) };
}

async function deadPool(): Promise<Sql> {
  return openPool(`postgres://nobody:x@127.0.0.1:${await freePort()}/gone`, { max: 1, name: 'dead' });
}

describe('outage handling', () => {
  it('counts what a restarting server and the driver raise as an outage, and nothing else', async () => {
    const dead = await deadPool();
    const refused = await dead`select 1`.catch((err: unknown) => err);
    await dead.end();
    expect((refused as { code: string }).code).toBe('ECONNREFUSED');
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'CONNECTION_CLOSED',
      'CONNECTION_ENDED',
      'CONNECTION_DESTROYED',
      'CONNECT_TIMEOUT',
      '57P01',
      '57P02',
      '57P03',
      '08006',
      '53300',
      'DATABASE_DOWN',
    ]) {
      expect(isDatabaseUnavailable({ code }), code).toBe(true);
    }
    for (const code of ['23505', '22P02', '42501', '57014', undefined])
      expect(isDatabaseUnavailable({ code }), String(code)).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
  });

  it('backs off with doubling delays, capped', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const ceiling = Math.min(60_000, 1_000 * 2 ** (attempt - 1));
      const d = backoffMs(attempt);
      expect(d).toBeGreaterThanOrEqual(ceiling / 2);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
    expect(backoffMs(30)).toBeLessThanOrEqual(60_000);
  });

  it('marks the database down only when the probe fails too, fails fast while down, and clears when it is back', async () => {
    const { log, messages } = recordingLog();
    const dead = await deadPool();
    const live = openPool(inject('databaseUrl'), { max: 1, name: 'live' });
    let target = live;
    const availability = new DatabaseAvailability(() => target`select 1`, log, 50);
    try {
      // A dropped connection while the database answers: the probe succeeds, nothing changes.
      availability.noteError({ code: 'ECONNRESET' });
      expect(availability.probing).toBe(true);
      const probed = Date.now() + 10_000;
      while (availability.probing && Date.now() < probed) await sleep(20);
      expect(availability.probing).toBe(false);
      expect(availability.isDown).toBe(false);

      // The database is gone: the probe fails, requests fail at once.
      target = dead;
      availability.noteError({ code: 'ECONNREFUSED' });
      const downBy = Date.now() + 10_000;
      while (!availability.isDown && Date.now() < downBy) await sleep(20);
      expect(availability.isDown).toBe(true);
      expect(() => availability.assertAvailable()).toThrow(DatabaseDownError);
      expect(isDatabaseUnavailable(new DatabaseDownError('x'))).toBe(true);

      // Back: the next probe clears it, without another failed request.
      target = live;
      const deadline = Date.now() + 5_000;
      while (availability.isDown && Date.now() < deadline) await sleep(20);
      expect(availability.isDown).toBe(false);
      expect(() => availability.assertAvailable()).not.toThrow();
      expect(messages().filter((m) => m.startsWith('database unavailable'))).toHaveLength(1);
      expect(messages().filter((m) => m.startsWith('database is back'))).toHaveLength(1);
    } finally {
      await availability.stop();
      await Promise.all([dead.end(), live.end()]);
    }
  });

  it('retries a periodic job soon while the database is unavailable, logs the outage once, and returns to its interval', async () => {
    const { log, messages } = recordingLog();
    let runs = 0;
    const job = startPeriodic({
      name: 'probe job',
      intervalMs: 60_000,
      backoffBaseMs: 10,
      log,
      run: async () => {
        runs++;
        if (runs <= 4) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
    });
    try {
      const deadline = Date.now() + 5_000;
      while (runs < 5 && Date.now() < deadline) await sleep(10);
      expect(runs).toBe(5);
      expect(job.failures).toBe(0);
      await sleep(300);
      expect(runs).toBe(5); // back on the one-minute interval
      expect(messages().filter((m) => m.includes('database unavailable; retrying with backoff'))).toHaveLength(1);
      expect(messages().filter((m) => m.includes('database is back'))).toHaveLength(1);
    } finally {
      await job.stop();
    }
  });

  it('keeps the interval after a failure that is not an outage', async () => {
    const { log, messages } = recordingLog();
    let runs = 0;
    const job = startPeriodic({
      name: 'buggy job',
      intervalMs: 60_000,
      backoffBaseMs: 10,
      log,
      run: async () => {
        runs++;
        throw new Error('a bug');
      },
    });
    try {
      await sleep(300);
      expect(runs).toBe(1);
      expect(messages()).toContain('buggy job failed');
    } finally {
      await job.stop();
    }
  });

  it('the isolation validator backs off while its database is unreachable and stores no report for it', async () => {
    const { log, messages } = recordingLog();
    const dead = await deadPool();
    const job = startValidatorJob({ sql: dead, intervalMs: 60_000, log, backoffBaseMs: 20 });
    try {
      await sleep(1_000);
      expect(job.failures).toBeGreaterThanOrEqual(3); // retried within a second, not after an hour
      expect(messages().filter((m) => m.includes('isolation validator: database unavailable'))).toHaveLength(1);
      expect(messages()).not.toContain('isolation validator could not run');
    } finally {
      await job.stop();
      await dead.end();
    }
  });
});
