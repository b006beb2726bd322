import { defineConfig } from 'vitest/config';

// Tiers, selectable with `--project`: fast in-process tests, end-to-end tests that start real
// processes on loopback, and — only when the test cluster is up (`npm run test:cluster` starts
// it and sets CHAOS_LAB_TEST_CLUSTER) — the lab on a real Kubernetes.
const onTestCluster = Boolean(process.env.CHAOS_LAB_TEST_CLUSTER);

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
      ...(onTestCluster
        ? [
            {
              extends: true as const,
              test: {
                name: 'cluster',
                include: ['test/cluster/**/*.test.ts'],
                testTimeout: 15 * 60_000,
                hookTimeout: 5 * 60_000,
                fileParallelism: false,
              },
            },
          ]
        : []),
    ],
  },
});
