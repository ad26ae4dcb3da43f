module.exports = { ...require('../../jest.preset.js'), displayName: 'lease', rootDir: __dirname };
