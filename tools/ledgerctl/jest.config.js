module.exports = { ...require('../../jest.preset.js'), displayName: 'ledgerctl', rootDir: __dirname };
