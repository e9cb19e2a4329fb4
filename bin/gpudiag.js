#!/usr/bin/env node
// The package's `gpudiag` command: a thin shim over the compiled CLI (npm ci runs `prepare`,
// which compiles TypeScript into dist/).
import('../dist/cli/main.js').catch((err) => {
  process.stderr.write(`gpudiag: cannot start (${err && err.message ? err.message : err}); run \`npm run build\` first\n`);
  process.exit(1);
});
