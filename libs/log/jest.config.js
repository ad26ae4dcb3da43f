module.exports = { ...require('../../jest.preset.js'), displayName: 'log', rootDir: __dirname };
