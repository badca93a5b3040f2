/**
 * The example token ledger: an application on an `any` accounts database and
 * a compact `keyless` receipts log, used by the demo, the tests and interop.
 */
export {
  type Transfer, type LedgerBlock, type LedgerTargets, makeBlock, decodeBlock, encodeTransfer, decodeTransfer, transferId,
  ledgerBlockCodec, MAX_TRANSFERS_PER_BLOCK, MAX_BLOCK_BYTES
} from './block.ts'
export {
  LedgerApp, type LedgerDbs, type LedgerOptions, type Account, encodeAccount, decodeAccount, accountId,
  STATUS_OK, STATUS_BAD_NONCE, STATUS_SELF, STATUS_INSUFFICIENT, STATUS_OVERFLOW
} from './app.ts'
export { Mempool } from './mempool.ts'
export { openLedgerDatabases } from './databases.ts'
