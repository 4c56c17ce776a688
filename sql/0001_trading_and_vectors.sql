-- Tenant template, version 1: the trading and vector tables every tenant gets.
-- Runs with search_path = tf_template, extensions, as tf_owner. Use unqualified names:
-- the provisioner clones each table into the tenant's schema.
-- Rules for template files (checked when the clone plan is compiled):
--   * every table has tenant_id uuid not null defaulting to the current tenant setting;
--   * every table has RLS enabled and forced, with policies on app.current_tenant_id;
--   * keys are uuids (no sequences: they would need catalog scans to grant per tenant).

create function touch_updated_at() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  new.updated_at := now();
  return new;
end $$;

create table portfolios (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
  name text not null check (length(name) between 1 and 200),
  base_currency text not null default 'USD' check (base_currency ~ '^[A-Z]{3}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index portfolios_created_idx on portfolios (created_at, id);

create table positions (
  portfolio_id uuid not null references portfolios (id) on delete cascade,
  symbol text not null check (length(symbol) between 1 and 32),
  tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
  quantity numeric(38, 10) not null default 0,
  average_price numeric(38, 10) not null default 0 check (average_price >= 0),
  realized_pnl numeric(38, 10) not null default 0,
  updated_at timestamptz not null default now(),
  primary key (portfolio_id, symbol)
);

create table orders (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
  portfolio_id uuid not null references portfolios (id) on delete cascade,
  client_order_id text check (length(client_order_id) between 1 and 64),
  symbol text not null check (length(symbol) between 1 and 32),
  side text not null check (side in ('buy', 'sell')),
  type text not null check (type in ('market', 'limit')),
  quantity numeric(38, 10) not null check (quantity > 0),
  limit_price numeric(38, 10) check (limit_price > 0),
  filled_quantity numeric(38, 10) not null default 0 check (filled_quantity >= 0 and filled_quantity <= quantity),
  average_fill_price numeric(38, 10),
  status text not null default 'open' check (status in ('open', 'partially_filled', 'filled', 'cancelled')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((type = 'limit') = (limit_price is not null))
);
create index orders_portfolio_created_idx on orders (portfolio_id, created_at desc);
create index orders_status_idx on orders (status) where status in ('open', 'partially_filled');
create unique index orders_client_order_id_key on orders (portfolio_id, client_order_id) where client_order_id is not null;

-- Fills. A hypertable on executed_at; its primary key must include the time column.
create table trades (
  id uuid not null default gen_random_uuid(),
  tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
  portfolio_id uuid not null references portfolios (id) on delete cascade,
  order_id uuid references orders (id) on delete set null,
  symbol text not null check (length(symbol) between 1 and 32),
  side text not null check (side in ('buy', 'sell')),
  quantity numeric(38, 10) not null check (quantity > 0),
  price numeric(38, 10) not null check (price >= 0),
  fee numeric(38, 10) not null default 0 check (fee >= 0),
  executed_at timestamptz not null,
  primary key (id, executed_at)
);
create index trades_portfolio_executed_idx on trades (portfolio_id, executed_at desc);
create index trades_symbol_executed_idx on trades (symbol, executed_at desc);
select create_hypertable('trades', 'executed_at', chunk_time_interval => interval '7 days', create_default_indexes => false);

-- OHLCV bars. A hypertable on the bar's start time.
create table market_data (
  tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
  symbol text not null check (length(symbol) between 1 and 32),
  bar_time timestamptz not null,
  open numeric(38, 10) not null,
  high numeric(38, 10) not null,
  low numeric(38, 10) not null,
  close numeric(38, 10) not null,
  volume numeric(38, 10) not null default 0 check (volume >= 0),
  primary key (symbol, bar_time),
  check (low <= high and low <= open and low <= close and high >= open and high >= close)
);
select create_hypertable('market_data', 'bar_time', chunk_time_interval => interval '1 day', create_default_indexes => false);

create table embeddings (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
  external_id text check (length(external_id) between 1 and 200),
  content text not null,
  metadata jsonb not null default '{}',
  embedding vector(384) not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index embeddings_external_id_key on embeddings (external_id) where external_id is not null;
create index embeddings_embedding_hnsw_idx on embeddings using hnsw (embedding vector_cosine_ops);
create index embeddings_metadata_idx on embeddings using gin (metadata jsonb_path_ops);

create trigger portfolios_touch_updated_at before update on portfolios for each row execute function touch_updated_at();
create trigger orders_touch_updated_at before update on orders for each row execute function touch_updated_at();
create trigger positions_touch_updated_at before update on positions for each row execute function touch_updated_at();
create trigger embeddings_touch_updated_at before update on embeddings for each row execute function touch_updated_at();

-- Row-Level Security, enabled and forced, keyed on the transaction's tenant setting.
-- The sub-select makes the setting an init-plan (read once per query, not per row);
-- nullif turns the empty string a finished transaction leaves behind into NULL: no rows.
do $$
declare t text;
begin
  foreach t in array array['portfolios', 'positions', 'orders', 'trades', 'market_data', 'embeddings'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format($p$create policy tenant_isolation on %I as permissive for all
      using (tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid))
      with check (tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid))$p$, t);
  end loop;
end $$;
