// The real-node suite (test/real-node/): not in `npm test`, because it needs root, the node's
// binaries (dev/real-node/build.sh) and the images (dev/images/build.sh); `npm run test:real-node`
// builds both first. One node serves each test file; it is torn down even when a test fails.
export default {
  rootDir: '../..',
  testEnvironment: 'node',
  transform: {},
  moduleFileExtensions: ['js', 'json'],
  testMatch: ['<rootDir>/dist/test/real-node/**/*.test.js'],
  testTimeout: 300_000,
  maxWorkers: 1,
};
