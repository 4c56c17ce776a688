CREATE TABLE "platform"."backups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"trigger" text DEFAULT 'manual' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 3 NOT NULL,
	"run_after" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_until" timestamp with time zone,
	"worker" text,
	"error" text,
	"template_version" text,
	"size_bytes" bigint,
	"raw_bytes" bigint,
	"tables" jsonb,
	"encryption" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"duration_ms" double precision,
	"expired_at" timestamp with time zone,
	CONSTRAINT "backups_status_check" CHECK ("platform"."backups"."status" in ('queued', 'running', 'succeeded', 'failed', 'expired')),
	CONSTRAINT "backups_trigger_check" CHECK ("platform"."backups"."trigger" in ('manual', 'scheduled'))
);
--> statement-breakpoint
ALTER TABLE "platform"."backups" ADD CONSTRAINT "backups_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "platform"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "backups_tenant_created_idx" ON "platform"."backups" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE INDEX "backups_due_idx" ON "platform"."backups" USING btree ("run_after") WHERE "platform"."backups"."status" in ('queued', 'running');