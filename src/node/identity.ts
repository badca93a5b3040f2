/**
 * The node's persistent identity: an Ed25519 libp2p key (the peer id, and
 * the validator signing key) stored as protobuf bytes in the data directory.
 * Created once; a key file that does not decode is an error, never replaced
 * silently (that would change the node's identity and validator vote).
 */

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'

export class IdentityError extends Error {
  readonly name = 'IdentityError'
}

/** Load the key at `path`, creating (and persisting) a new Ed25519 key if the file does not exist. */
export async function loadOrCreateKey (path: string): Promise<PrivateKey> {
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') { throw err }
  }
  if (bytes !== undefined) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new IdentityError(`the key file ${path} does not hold a private key: ${(err as Error).message}`)
    }
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dirname(path), { recursive: true })
  // write then rename: a crash never leaves a truncated key file
  await writeFile(`${path}.tmp`, privateKeyToProtobuf(key), { mode: 0o600 })
  await rename(`${path}.tmp`, path)
  return key
}
