// The store fault test (test/store-faults.spec.ts) runs only with CL_FAULT_TESTS=1 (issue 16). One of
// its stalls is understood and fixed (libs/storage MonitorWatchdog: a MongoDB driver monitor that had
// stopped checking left a replica unable to append after FerretDB's restart, its chain lease still
// held); it goes back into CI once it has passed a long run of consecutive loops on a loaded machine.
// A failure prints where the chain stands (LeasedStack.diagnose). Run it with:
// CL_FAULT_TESTS=1 npx jest -c services/ledger/jest.config.js store-faults
const preset = require('../../jest.preset.js');
module.exports = {
  ...preset,
  displayName: 'ledger',
  rootDir: __dirname,
  testPathIgnorePatterns: ['/node_modules/', ...(process.env.CL_FAULT_TESTS === '1' ? [] : ['/test/store-faults\\.spec\\.ts$'])],
};
