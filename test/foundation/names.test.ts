import { describe, expect, it } from 'vitest';
import { assertTenantSchemaName, tenantRoleName, tenantSchemaName } from '../../src/db/names.ts';

describe('tenant names', () => {
  it('derives a stable keyed name from the tenant id', () => {
    const a = tenantSchemaName('6b1f0b8e-1b7e-4a53-9f0a-6a1f8b7f1c11', 'secret-one-0123456789');
    expect(a).toMatch(/^tenant_[0-9a-f]{20}$/);
    expect(tenantSchemaName('6b1f0b8e-1b7e-4a53-9f0a-6a1f8b7f1c11', 'secret-one-0123456789')).toBe(a);
    expect(tenantSchemaName('6b1f0b8e-1b7e-4a53-9f0a-6a1f8b7f1c11', 'secret-two-0123456789')).not.toBe(a);
    expect(tenantRoleName(a)).toBe(`${a}_role`);
  });

  it.each([
    'tenant_ABC',
    'tenant_',
    'tenant_12"; drop schema x; --',
    "tenant_1'",
    'tenant_12 3',
    'tenant_١٢٣',
    `tenant_${'a'.repeat(57)}`,
    'public',
  ])('refuses %j before any DDL could use it', (name) => {
    expect(() => assertTenantSchemaName(name)).toThrow(/refusing tenant schema name/);
  });
});
