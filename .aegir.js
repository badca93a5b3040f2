/** @type {import('aegir').PartialOptions} */
export default {
  build: {
    bundle: false // node-only module (tcp, level): no browser bundle
  },
  lint: {
    files: ['src/**/*.ts', 'test/**/*.ts', 'interop/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts', 'sim/**/*.ts']
  },
  test: {
    bail: false,
    target: ['node'] // browser/webworker targets would download Playwright browsers
  },
  dependencyCheck: {
    // arrays REPLACE aegir's defaults, so repeat them
    productionIgnorePatterns: ['/bench', '/dist', '/test', '/interop', '/scripts', '/examples', '/sim', '.aegir.js'],
    developmentIgnorePatterns: ['/dist', '/src'],
    // mocha: used by scripts/summary-reporter.cjs (hoisted from aegir).
    // libp2p-qmdb: the examples import this package by its own name (self-reference).
    ignore: ['mocha', 'libp2p-qmdb']
  }
}
