// Shared Jest settings: SWC compiles TypeScript (with decorator metadata, which Nest needs) and the
// tsconfig path aliases resolve to library sources, so tests never need a build first.
const path = require('node:path');
const fs = require('node:fs');

const root = __dirname;
const swcrc = JSON.parse(fs.readFileSync(path.join(root, '.swcrc'), 'utf8'));
const { paths } = require('./tsconfig.base.json').compilerOptions;

const moduleNameMapper = {};
for (const [alias, [target]] of Object.entries(paths)) {
  moduleNameMapper[`^${alias.replace(/[/.]/g, '\\$&')}$`] = path.join(root, target);
}

module.exports = {
  testEnvironment: 'node',
  testMatch: ['**/*.spec.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: { '^.+\\.ts$': ['@swc/jest', { ...swcrc, swcrc: false, sourceMaps: 'inline' }] },
  moduleNameMapper,
  testTimeout: 120_000,
  // Prints the infrastructure route once and builds server binaries before workers start.
  globalSetup: path.join(root, 'libs/testing/src/global-setup.ts'),
  // Deletes the run's scratch folder: keys and secrets the tests wrote (libs/testing/src/scratch.ts).
  globalTeardown: path.join(root, 'libs/testing/src/global-teardown.ts'),
  // Servers started by a test file are stopped in its afterAll; a leaked handle is a bug to see.
  detectOpenHandles: false,
};
