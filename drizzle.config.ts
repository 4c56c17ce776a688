import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes control-plane migrations; start-up applies them (src/db/migrate.ts).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
  migrations: { schema: 'drizzle', table: '__drizzle_migrations' },
});
