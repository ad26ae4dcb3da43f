// The console's own units (parsers, outlier rules, exports) in Node; the browser tests of the whole
// console are services/audit/test/console*.spec.ts (real Chromium against the real services).
module.exports = { ...require('../../../jest.preset.js'), displayName: 'audit-console', rootDir: __dirname, globalSetup: undefined };
