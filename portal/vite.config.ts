import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The platform the dev server forwards /api to (`tessera serve` listens on 8080 by default).
const target = process.env.TESSERA_URL ?? 'http://127.0.0.1:8080';
const proxy = { '/api': { target, changeOrigin: false } };

export default defineConfig({
  // Served by `tessera serve` at `/`, with index.html for every non-API path.
  base: '/',
  plugins: [react()],
  server: { proxy },
  preview: { proxy },
  build: {
    outDir: 'dist',
    // Swagger UI (the API reference page) is large; it is loaded only on that page.
    chunkSizeWarningLimit: 2500,
  },
});
