'use strict';
// `require('locksmith')`. locksmith is an ES module. Node >= 20.19 (and >= 22.12) can require() an
// ES module, so there this hands over the very module `import` loads; older versions cannot, and
// get one sentence saying how to load it instead of a bare ERR_REQUIRE_ESM.
try {
  module.exports = require('../dist/src/index.js');
} catch (e) {
  if (e !== null && typeof e === 'object' && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    throw new Error(
      "locksmith is an ES module and this Node cannot require() it: use `const { LockCoordinator } = await import('locksmith');` (or Node >= 20.19, whose require() loads ES modules)",
      { cause: e },
    );
  }
  throw e;
}
