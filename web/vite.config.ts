import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
/** `npx vite --config web/vite.config.ts` proxies the API to a gateway running on this address. */
const gateway = process.env.PARLEY_GATEWAY ?? 'http://127.0.0.1:3500';

export default defineConfig({
  root,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      '/token': gateway,
      '/refresh_token': gateway,
      '/chat': { target: gateway.replace(/^http/, 'ws'), ws: true },
    },
  },
});
