ALTER TABLE "platform"."tenants" DROP CONSTRAINT "tenants_status_check";--> statement-breakpoint
ALTER TABLE "platform"."tenants" ALTER COLUMN "slug" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "platform"."tenants" ALTER COLUMN "name" DROP NOT NULL;--> statement-breakpoint
CREATE INDEX "tenants_pool_idx" ON "platform"."tenants" USING btree ("template_version","created_at") WHERE "platform"."tenants"."status" = 'pooled';--> statement-breakpoint
ALTER TABLE "platform"."tenants" ADD CONSTRAINT "tenants_pooled_check" CHECK (("platform"."tenants"."status" = 'pooled') = ("platform"."tenants"."slug" is null and "platform"."tenants"."name" is null) and ("platform"."tenants"."slug" is null) = ("platform"."tenants"."name" is null));--> statement-breakpoint
ALTER TABLE "platform"."tenants" ADD CONSTRAINT "tenants_status_check" CHECK ("platform"."tenants"."status" in ('active', 'suspended', 'deleted', 'purged', 'pooled'));