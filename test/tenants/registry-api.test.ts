import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimeRoleOf } from '../../src/db/names.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';

let t: TestPlatform;
beforeAll(async () => {
  t = await testPlatform();
});
afterAll(() => t?.close());

async function create(slug: string, extra: Record<string, unknown> = {}) {
  const res = await t.http('/v1/tenants', { method: 'POST', json: { slug, name: `Tenant ${slug}`, ...extra } });
  return { res, body: (await res.json()) as Record<string, any> };
}

async function catalog(schema: string, role: string) {
  const [row] = await t.su<{ schema: boolean; role: boolean; runtime_member: boolean }[]>`
    select exists (select 1 from pg_namespace where nspname = ${schema}) as schema,
           exists (select 1 from pg_roles where rolname = ${role}) as role,
           exists (select 1 from pg_auth_members m join pg_roles r on r.oid = m.roleid join pg_roles a on a.oid = m.member
                   where r.rolname = ${role} and a.rolname = ${runtimeRoleOf(role)}) as runtime_member`;
  return row!;
}

describe('POST /v1/tenants', () => {
  it('provisions a tenant and answers 201 with its description', async () => {
    const { res, body } = await create('acme-capital', { plan: 'pro' });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v1/tenants/${body.id}`);
    expect(body).toMatchObject({ slug: 'acme-capital', name: 'Tenant acme-capital', plan: 'pro', status: 'active' });
    expect(body.schema).toMatch(/^tenant_[0-9a-f]{20}$/);
    expect(body.provisioningMs).toBeGreaterThan(0);
    expect(Date.parse(body.createdAt)).not.toBeNaN();
    expect(await catalog(body.schema, `${body.schema}_role`)).toEqual({
      schema: true,
      role: true,
      runtime_member: true,
    });
    const [audit] =
      await t.su`select actor, action, outcome, duration_ms from platform.audit_log where tenant_id = ${body.id}`;
    expect(audit).toMatchObject({ actor: 'admin', action: 'tenant.create', outcome: 'succeeded' });
    expect(audit!.duration_ms).toBeGreaterThan(0);
  });

  it('defaults the plan to free', async () => {
    const { body } = await create('default-plan');
    expect(body.plan).toBe('free');
  });

  it.each([
    ['too short', 'a', 'at least 2'],
    ['too long', 'a'.repeat(51), 'at most 50'],
    ['underscore', 'acme_capital', 'lowercase letters'],
    ['leading hyphen', '-acme', 'lowercase letters'],
    ['double hyphen', 'acme--capital', 'lowercase letters'],
    ['quote and semicolon', "x'; drop schema platform; --", 'lowercase letters'],
    ['unicode', 'ácme', 'lowercase letters'],
    ['reserved', 'admin', 'reserved'],
    ['reserved, other case', 'Postgres', 'reserved'],
  ])('rejects a slug that is %s with 400 naming the field', async (_, slug, message) => {
    const before = await t.su`select count(*)::int as n from platform.tenants`;
    const { res, body } = await create(slug);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(body).toMatchObject({ code: 'validation_failed', field: 'slug' });
    expect(body.detail).toContain(message);
    expect(await t.su`select count(*)::int as n from platform.tenants`).toEqual(before);
  });

  it('rejects a taken slug with 409, comparing case-insensitively and counting deleted tenants', async () => {
    const first = await create('taken');
    expect(first.res.status).toBe(201);
    const again = await create('TAKEN');
    expect(again.res.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'slug_taken', field: 'slug' });

    const deleted = await create('gone-soon');
    await t.http(`/v1/tenants/${deleted.body.id}`, { method: 'DELETE' });
    const reuse = await create('gone-soon');
    expect(reuse.res.status).toBe(409);
  });

  it('a failed create leaves a failed audit row and nothing else', async () => {
    await create('dupe-audit');
    await create('dupe-audit');
    const rows =
      await t.su`select outcome, detail->>'slug' as slug from platform.audit_log where detail->>'slug' = 'dupe-audit' order by id`;
    expect(rows.map((r) => r.outcome)).toEqual(['succeeded', 'failed']);
  });

  it.each([
    ['an unknown plan', { slug: 'plan-x', name: 'X', plan: 'platinum' }, 'plan'],
    ['an over-long name', { slug: 'long-name', name: 'n'.repeat(201) }, 'name'],
    ['an empty name', { slug: 'empty-name', name: '   ' }, 'name'],
    ['an unknown field', { slug: 'extra', name: 'X', owner: 'me' }, '(body)'],
    ['a missing slug', { name: 'X' }, 'slug'],
  ])('rejects %s with 400', async (_, json, field) => {
    const res = await t.http('/v1/tenants', { method: 'POST', json });
    const body = await res.json();
    expect(res.status).toBe(400);
    expect(body.code).toBe('validation_failed');
    expect(body.errors.map((e: { field: string }) => e.field)).toContain(field);
  });

  it('rejects malformed JSON with 400 and a wrong content type with 415', async () => {
    const malformed = await t.http('/v1/tenants', {
      method: 'POST',
      body: '{"slug": "x",',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).code).toBe('malformed_json');
    const form = await t.http('/v1/tenants', {
      method: 'POST',
      body: 'slug=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect((await form.json()).code).toBe('unsupported_media_type');
    expect(await t.su`select 1 from platform.tenants where slug = 'x'`).toHaveLength(0);
  });

  it('rejects a body over the admin limit with 413', async () => {
    const res = await t.http('/v1/tenants', { method: 'POST', json: { slug: 'big', name: 'x'.repeat(70_000) } });
    expect(res.status).toBe(413);
    expect((await res.json()).code).toBe('payload_too_large');
  });
});

describe('admin authentication', () => {
  it.each([
    ['missing', null],
    ['wrong', 'not-the-admin-token'],
    ['almost right', 'test-admin-token-012345678'],
  ])('answers 401 with nothing about tenants when the token is %s', async (_, token) => {
    const { body: secret } = await create(`secret-${token?.length ?? 0}`);
    for (const [method, path] of [
      ['GET', '/v1/tenants'],
      ['GET', `/v1/tenants/${secret.id}`],
      ['POST', '/v1/tenants'],
      ['DELETE', `/v1/tenants/${secret.id}`],
    ]) {
      const res = await t.http(path!, {
        method,
        token,
        json: method === 'POST' ? { slug: 'sneaky', name: 'x' } : undefined,
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const text = await res.text();
      // The path the caller sent is echoed as `instance`; nothing the server knows is.
      expect(text).not.toContain(secret.name);
      expect(text).not.toContain(secret.schema);
      expect(text).not.toContain(secret.slug);
      expect(JSON.parse(text).code).toBe('unauthorized');
    }
    expect(await t.su`select 1 from platform.tenants where slug = 'sneaky'`).toHaveLength(0);
    expect((await t.tenants.get(secret.id)).status).toBe('active');
  });
});

describe('Idempotency-Key', () => {
  it('returns the same tenant for a retry with the same key and body', async () => {
    const send = () =>
      t.http('/v1/tenants', {
        method: 'POST',
        json: { slug: 'idem', name: 'Idem' },
        headers: { 'idempotency-key': 'key-1' },
      });
    const first = await send();
    const second = await send();
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect((await second.json()).id).toBe((await first.json()).id);
    expect(await t.su`select 1 from platform.tenants where slug = 'idem'`).toHaveLength(1);
  });

  it('creates exactly one tenant when retries race', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        t.http('/v1/tenants', {
          method: 'POST',
          json: { slug: 'idem-race', name: 'Race' },
          headers: { 'idempotency-key': 'race-key' },
        }),
      ),
    );
    const bodies = await Promise.all(results.map((r) => r.json()));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(201));
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    const [count] = await t.su`select count(*)::int as n from pg_namespace where nspname = ${bodies[0].schema}`;
    expect(count!.n).toBe(1);
  });

  it('refuses the same key with a different body (422)', async () => {
    await t.http('/v1/tenants', {
      method: 'POST',
      json: { slug: 'idem-a', name: 'A' },
      headers: { 'idempotency-key': 'key-2' },
    });
    const res = await t.http('/v1/tenants', {
      method: 'POST',
      json: { slug: 'idem-b', name: 'B' },
      headers: { 'idempotency-key': 'key-2' },
    });
    expect(res.status).toBe(422);
    expect((await res.json()).code).toBe('idempotency_key_reused');
    expect(await t.su`select 1 from platform.tenants where slug = 'idem-b'`).toHaveLength(0);
  });

  it('rejects a malformed key', async () => {
    const res = await t.http('/v1/tenants', {
      method: 'POST',
      json: { slug: 'idem-c', name: 'C' },
      headers: { 'idempotency-key': 'has space' },
    });
    expect(res.status).toBe(400);
    expect((await res.json()).field).toBe('Idempotency-Key');
  });
});

describe('GET /v1/tenants', () => {
  it('finds a tenant by id and by slug, and 404s an unknown one', async () => {
    const { body } = await create('findme');
    expect((await (await t.http(`/v1/tenants/${body.id}`)).json()).slug).toBe('findme');
    expect((await (await t.http('/v1/tenants/FINDME')).json()).id).toBe(body.id);
    const missing = await t.http('/v1/tenants/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect((await missing.json()).code).toBe('tenant_not_found');
  });

  it('pages through every tenant exactly once with the cursor', async () => {
    for (let i = 0; i < 7; i++) await create(`page-${i}`);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Response = await t.http(`/v1/tenants?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      const page = (await res.json()) as { items: { id: string }[]; nextCursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor;
    } while (cursor);
    const [all] = await t.su`select count(*)::int as n from platform.tenants where status <> 'purged'`;
    expect(seen).toHaveLength(all!.n);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('rejects a malformed cursor and an out-of-range limit', async () => {
    const bad = await t.http('/v1/tenants?cursor=not-a-cursor');
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe('invalid_cursor');
    const limit = await t.http('/v1/tenants?limit=0');
    expect(limit.status).toBe(400);
    expect((await limit.json()).field).toBe('limit');
  });
});

describe('PATCH /v1/tenants/{id}', () => {
  it('renames and changes plan', async () => {
    const { body } = await create('patchme');
    const res = await t.http(`/v1/tenants/${body.id}`, {
      method: 'PATCH',
      json: { name: 'New name', plan: 'enterprise' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name: 'New name', plan: 'enterprise', status: 'active' });
  });

  it('suspends (revoking the runtime role at once) and reactivates', async () => {
    const { body } = await create('suspend-me');
    const role = `${body.schema}_role`;
    const suspended = await t.http(`/v1/tenants/${body.id}`, { method: 'PATCH', json: { status: 'suspended' } });
    expect((await suspended.json()).status).toBe('suspended');
    expect((await catalog(body.schema, role)).runtime_member).toBe(false);
    const active = await t.http(`/v1/tenants/${body.id}`, { method: 'PATCH', json: { status: 'active' } });
    expect((await active.json()).status).toBe('active');
    expect((await catalog(body.schema, role)).runtime_member).toBe(true);
  });

  it('rejects an empty patch, an unknown status and changes to a deleted tenant', async () => {
    const { body } = await create('patch-bad');
    expect((await t.http(`/v1/tenants/${body.id}`, { method: 'PATCH', json: {} })).status).toBe(400);
    expect((await t.http(`/v1/tenants/${body.id}`, { method: 'PATCH', json: { status: 'deleted' } })).status).toBe(400);
    await t.http(`/v1/tenants/${body.id}`, { method: 'DELETE' });
    const res = await t.http(`/v1/tenants/${body.id}`, { method: 'PATCH', json: { name: 'zombie' } });
    expect(res.status).toBe(409);
    expect((await res.json()).code).toBe('tenant_deleted');
  });
});

describe('DELETE /v1/tenants/{id}', () => {
  it('soft-deletes: access revoked at once, data kept until the retention runs out', async () => {
    const { body } = await create('soft-delete');
    const res = await t.http(`/v1/tenants/${body.id}`, { method: 'DELETE' });
    const deleted = await res.json();
    expect(res.status).toBe(200);
    expect(deleted.status).toBe('deleted');
    const retention = Date.parse(deleted.purgeAfter) - Date.parse(deleted.deletedAt);
    expect(retention).toBeGreaterThan(29 * 86_400_000);
    expect(await catalog(body.schema, `${body.schema}_role`)).toEqual({
      schema: true,
      role: true,
      runtime_member: false,
    });
    // Deleting twice is harmless.
    expect((await (await t.http(`/v1/tenants/${body.id}`, { method: 'DELETE' })).json()).status).toBe('deleted');
  });

  it('purges now with ?purge=true: schema, chunks and role are gone', async () => {
    const { body } = await create('purge-now');
    await t.su.unsafe(`insert into "${body.schema}".market_data (tenant_id, symbol, bar_time, open, high, low, close)
                       values ('${body.id}', 'X', now(), 1, 1, 1, 1)`);
    const res = await t.http(`/v1/tenants/${body.id}?purge=true`, { method: 'DELETE' });
    expect((await res.json()).status).toBe('purged');
    expect(await catalog(body.schema, `${body.schema}_role`)).toEqual({
      schema: false,
      role: false,
      runtime_member: false,
    });
    expect(
      await t.su`select 1 from timescaledb_information.hypertables where hypertable_schema = ${body.schema}`,
    ).toHaveLength(0);
    const actions = await t.su`select action from platform.audit_log where tenant_id = ${body.id} order by id`;
    expect(actions.map((a) => a.action)).toEqual(['tenant.create', 'tenant.purge']);
  });

  it('the retention sweep purges soft-deleted tenants whose time has come, and only those', async () => {
    const due = await create('due');
    const kept = await create('kept');
    await t.http(`/v1/tenants/${due.body.id}`, { method: 'DELETE' });
    await t.http(`/v1/tenants/${kept.body.id}`, { method: 'DELETE' });
    await t.su`update platform.tenants set purge_after = now() - interval '1 second' where id = ${due.body.id}`;
    expect(await t.tenants.purgeExpired({ actor: 'test' })).toBe(1);
    expect((await t.tenants.get(due.body.id)).status).toBe('purged');
    expect((await t.tenants.get(kept.body.id)).status).toBe('deleted');
  });

  it('rejects a bad purge flag', async () => {
    const { body } = await create('purge-flag');
    const res = await t.http(`/v1/tenants/${body.id}?purge=yes`, { method: 'DELETE' });
    expect(res.status).toBe(400);
    expect((await t.tenants.get(body.id)).status).toBe('active');
  });
});
