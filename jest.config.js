// Tests are compiled by `tsc` into dist/ first (npm test does both), so jest runs plain ESM
// and needs no transform. One real control plane serves the whole run (globalSetup).
const common = {
  testEnvironment: 'node',
  transform: {},
  moduleFileExtensions: ['js', 'json'],
};

export default {
  testTimeout: 60_000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/dist/{api,cli,dev,operator,agent}/**/*.test.js', '<rootDir>/dist/test/unit/**/*.test.js'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/dist/test/integration/**/*.test.js', '<rootDir>/dist/test/e2e/**/*.test.js'],
      globalSetup: '<rootDir>/dist/test/support/global-setup.js',
      globalTeardown: '<rootDir>/dist/test/support/global-teardown.js',
    },
  ],
};
