// The image smoke test (test/images/): not in `npm test`, because it needs the archives that
// dev/images/build.sh writes and root for Podman. `npm run test:images` builds both first.
export default {
  rootDir: '../..',
  testEnvironment: 'node',
  transform: {},
  moduleFileExtensions: ['js', 'json'],
  testMatch: ['<rootDir>/dist/test/images/**/*.test.js'],
  testTimeout: 120_000,
};
