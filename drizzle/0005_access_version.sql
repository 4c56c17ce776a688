CREATE TABLE "platform"."access_version" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"version" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "access_version_one_row" CHECK ("platform"."access_version"."id")
);
--> statement-breakpoint
INSERT INTO "platform"."access_version" ("id", "version") VALUES (true, 0);
