module.exports = { ...require('../../jest.preset.js'), displayName: 'up', rootDir: __dirname };
