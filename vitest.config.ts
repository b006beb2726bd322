import { defineConfig } from 'vitest/config';

// Two tiers, selectable with `--project`: fast in-process tests, and end-to-end tests
// that start real processes on loopback.
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            'services/**/*.test.ts',
            'lab/**/*.test.ts',
            'charts/**/*.test.ts',
            'dashboards/**/*.test.ts',
            'test/unit/**/*.test.ts',
            'test/fake-kube/**/*.test.ts',
          ],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // The lab's processes compete for two cores: one e2e file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
