CREATE TABLE "platform"."migration_failures" (
	"run_id" bigint NOT NULL,
	"tenant_id" uuid NOT NULL,
	"migration" text,
	"code" text,
	"error" text NOT NULL,
	"attempts" integer NOT NULL,
	"failed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "migration_failures_run_id_tenant_id_pk" PRIMARY KEY("run_id","tenant_id")
);
--> statement-breakpoint
CREATE TABLE "platform"."migration_runs" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "platform"."migration_runs_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"status" text DEFAULT 'running' NOT NULL,
	"target_version" text NOT NULL,
	"actor" text NOT NULL,
	"total" integer DEFAULT 0 NOT NULL,
	"migrated" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "migration_runs_status_check" CHECK ("platform"."migration_runs"."status" in ('running', 'succeeded', 'failed', 'interrupted'))
);
--> statement-breakpoint
CREATE TABLE "platform"."template_versions" (
	"version" text PRIMARY KEY NOT NULL,
	"structure" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "platform"."template_migrations" ADD COLUMN "tenant_plan" jsonb;--> statement-breakpoint
ALTER TABLE "platform"."migration_failures" ADD CONSTRAINT "migration_failures_run_id_migration_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "platform"."migration_runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "platform"."migration_failures" ADD CONSTRAINT "migration_failures_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "platform"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "migration_runs_started_idx" ON "platform"."migration_runs" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "tenants_template_version_idx" ON "platform"."tenants" USING btree ("template_version") WHERE "platform"."tenants"."status" <> 'purged';