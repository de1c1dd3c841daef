import { defineConfig } from 'vitest/config';

// Mesa's software WebGPU adapter needs surfaceless EGL. Test files run in worker threads, whose
// process.env is a copy the native layer does not see: set it here, in the main process.
process.env.EGL_PLATFORM ??= 'surfaceless';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/global-setup.ts'],
    pool: 'threads',
    // Two test files at a time even on 2 cores (the default is one fewer than the cores): most
    // of the slow files wait on child processes, Redis or a browser rather than compute.
    maxWorkers: 2,
    testTimeout: 60_000,
  },
});
