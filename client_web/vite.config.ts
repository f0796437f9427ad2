import { defineConfig } from "vite";

// Output is served by aiohttp: hashed names under /assets, no inline scripts (strict CSP).
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    rollupOptions: { input: { main: "index.html", meeting: "meeting.html" } },
  },
  server: { proxy: { "/api": "http://localhost:8080", "/healthz": "http://localhost:8080", "/socket.io": { target: "ws://localhost:8080", ws: true } } },
});
