CREATE SCHEMA "platform";
--> statement-breakpoint
CREATE TABLE "platform"."audit_log" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "platform"."audit_log_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"tenant_id" uuid,
	"outcome" text NOT NULL,
	"duration_ms" double precision,
	"request_id" text,
	"detail" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "audit_log_outcome_check" CHECK ("platform"."audit_log"."outcome" in ('succeeded', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "platform"."idempotency_keys" (
	"key" text PRIMARY KEY NOT NULL,
	"request_hash" text NOT NULL,
	"tenant_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "platform"."template_migrations" (
	"name" text PRIMARY KEY NOT NULL,
	"checksum" text NOT NULL,
	"applied_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "platform"."tenant_migrations" (
	"tenant_id" uuid NOT NULL,
	"name" text NOT NULL,
	"checksum" text NOT NULL,
	"applied_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenant_migrations_tenant_id_name_pk" PRIMARY KEY("tenant_id","name")
);
--> statement-breakpoint
CREATE TABLE "platform"."tenants" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"slug" text NOT NULL,
	"name" text NOT NULL,
	"plan" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"schema_name" text NOT NULL,
	"role_name" text NOT NULL,
	"template_version" text NOT NULL,
	"provisioning_ms" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	"purge_after" timestamp with time zone,
	CONSTRAINT "tenants_status_check" CHECK ("platform"."tenants"."status" in ('active', 'suspended', 'deleted', 'purged')),
	CONSTRAINT "tenants_schema_name_check" CHECK ("platform"."tenants"."schema_name" ~ '^tenant_[0-9a-f]+$' and octet_length("platform"."tenants"."schema_name") <= 63)
);
--> statement-breakpoint
ALTER TABLE "platform"."idempotency_keys" ADD CONSTRAINT "idempotency_keys_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "platform"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "platform"."tenant_migrations" ADD CONSTRAINT "tenant_migrations_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "platform"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_log_tenant_idx" ON "platform"."audit_log" USING btree ("tenant_id","occurred_at");--> statement-breakpoint
CREATE UNIQUE INDEX "tenants_slug_lower_key" ON "platform"."tenants" USING btree (lower("slug"));--> statement-breakpoint
CREATE UNIQUE INDEX "tenants_schema_name_key" ON "platform"."tenants" USING btree ("schema_name");--> statement-breakpoint
CREATE UNIQUE INDEX "tenants_role_name_key" ON "platform"."tenants" USING btree ("role_name");--> statement-breakpoint
CREATE INDEX "tenants_purge_after_idx" ON "platform"."tenants" USING btree ("purge_after") WHERE "platform"."tenants"."status" = 'deleted';