/** @type {import('aegir').PartialOptions} */
export default {
  build: {
    bundle: false // node-only module (tcp, level): no browser bundle
  },
  lint: {
    files: ['src/**/*.ts', 'test/**/*.ts', 'interop/**/*.ts', 'bench/**/*.ts']
  },
  test: {
    bail: false,
    target: ['node'] // browser/webworker targets would download Playwright browsers
  },
  dependencyCheck: {
    // arrays REPLACE aegir's defaults, so repeat them
    productionIgnorePatterns: ['/bench', '/dist', '/test', '/interop', '/scripts', '.aegir.js'],
    developmentIgnorePatterns: ['/dist', '/src'],
    // mocha: used by scripts/summary-reporter.cjs (hoisted from aegir).
    // The libp2p stack below is the node's runtime; entries leave this list as
    // the modules using them (p2p, consensus, marshal, node) land.
    ignore: [
      'mocha',
      '@libp2p/identify',
      '@libp2p/noise', '@libp2p/ping', '@libp2p/prometheus-metrics', '@libp2p/tcp',
      '@libp2p/yamux', '@multiformats/multiaddr', 'libp2p', 'uint8arraylist',
      'datastore-core', 'datastore-level', '@ethereumjs/mpt'
    ]
  }
}
