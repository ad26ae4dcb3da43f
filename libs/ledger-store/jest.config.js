module.exports = { ...require('../../jest.preset.js'), displayName: 'ledger-store', rootDir: __dirname };
