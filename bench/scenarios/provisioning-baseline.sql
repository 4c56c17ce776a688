-- The provisioning baseline: the same tenant clone, hand-written as DDL inside the
-- database, in one plpgsql call (one transaction, no catalog introspection, no registry).
-- tenantforge's provisioner must stay close to this.
create schema if not exists bench;

create or replace function bench.clone_tenant(s text, r text, tenant uuid) returns void
language plpgsql as $fn$
declare
  t text;
  tenant_check text := $p$tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)$p$;
begin
  set local role tf_owner;
  execute format('create schema %I', s);
  execute format('revoke all on schema %I from public', s);
  foreach t in array array['portfolios', 'positions', 'orders', 'trades', 'market_data', 'market_data_1h', 'embeddings'] loop
    execute format('create table %I.%I (like tf_template.%I including all)', s, t, t);
  end loop;
  execute format('alter table %I.positions add constraint positions_portfolio_id_fkey foreign key (portfolio_id) references %I.portfolios (id) on delete cascade', s, s);
  execute format('alter table %I.orders add constraint orders_portfolio_id_fkey foreign key (portfolio_id) references %I.portfolios (id) on delete cascade', s, s);
  execute format('alter table %I.trades add constraint trades_portfolio_id_fkey foreign key (portfolio_id) references %I.portfolios (id) on delete cascade', s, s);
  execute format('alter table %I.trades add constraint trades_order_id_fkey foreign key (order_id) references %I.orders (id) on delete set null', s, s);
  foreach t in array array['portfolios', 'orders', 'positions', 'embeddings'] loop
    execute format('create trigger %I before update on %I.%I for each row execute function tf_template.touch_updated_at()', t || '_touch_updated_at', s, t);
  end loop;
  foreach t in array array['portfolios', 'positions', 'orders', 'trades', 'market_data', 'market_data_1h', 'embeddings'] loop
    execute format('alter table %I.%I enable row level security', s, t);
    execute format('alter table %I.%I force row level security', s, t);
  end loop;
  perform extensions.create_hypertable(format('%I.trades', s)::regclass, 'executed_at', chunk_time_interval => interval '7 days', create_default_indexes => false, associated_schema_name => s);
  perform extensions.create_hypertable(format('%I.market_data', s)::regclass, 'bar_time', chunk_time_interval => interval '1 day', create_default_indexes => false, associated_schema_name => s);
  perform extensions.create_hypertable(format('%I.market_data_1h', s)::regclass, 'bucket', chunk_time_interval => interval '30 days', create_default_indexes => false, associated_schema_name => s);
  perform pg_advisory_xact_lock(hashtext('tenantforge:tenant-roles'));
  execute format('create role %I nologin noinherit', r);
  execute format('grant usage on schema %I to %I', s, r);
  foreach t in array array['portfolios', 'positions', 'orders', 'trades', 'market_data', 'market_data_1h', 'embeddings'] loop
    execute format('create policy tenant_isolation on %I.%I for all to %I using (%s) with check (%s)', s, t, r, tenant_check, tenant_check);
    execute format('revoke all on table %I.%I from public', s, t);
    execute format('grant select, insert, update, delete on table %I.%I to %I', s, t, r);
  end loop;
  -- The tenant's runtime lane: tf_app_<first hex digit of its name mod 8>, as the service does.
  execute format('grant %I to %I', r, format('tf_app_%s', ('x' || substr(r, 8, 1))::bit(4)::int % 8));
end $fn$;
