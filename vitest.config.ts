import { defineConfig } from 'vitest/config';

// Mesa's software WebGPU adapter needs surfaceless EGL. Test files run in worker threads, whose
// process.env is a copy the native layer does not see: set it here, in the main process.
process.env.EGL_PLATFORM ??= 'surfaceless';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/global-setup.ts'],
    pool: 'threads',
    testTimeout: 60_000,
  },
});
