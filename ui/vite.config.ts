import { defineConfig } from "vitest/config";

// Offline, self-contained bundle: no CDN, no remote fonts; Tauri loads ui/dist through its own protocol.
export default defineConfig({
  base: "./",
  clearScreen: false,
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 200 },
  server: { port: 1420, strictPort: true },
  test: { environment: "happy-dom", include: ["src/**/*.test.ts", "src/**/*.test.tsx"] },
});
