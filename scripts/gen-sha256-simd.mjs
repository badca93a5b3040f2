// Generates src/merkle/sha256-simd-wasm.ts: a WebAssembly SIMD module that
// hashes four independent two-block SHA-256 messages at once (one message per
// i32x4 lane). Every leaf (u64 position ‖ operation of up to 111 bytes) and
// every node (u64 position ‖ left ‖ right, 72 bytes) of the Merkle code is such
// a message, and a batch has thousands of independent ones (its leaves, then
// each level of new nodes), so four lanes turn into ~4x fewer rounds.
//
// Export `hash(groups, outPtr, scratchPtr)`: for g < groups, reads the 32
// message words of four messages at `g * 512` (the 4 message bytes of word t
// of lane j, in message order, at byte `g*512 + t*16 + j*4`; padding included)
// and writes the 32 digest bytes of each lane at `outPtr + g*128` (digest
// bytes 4i..4i+4 of lane j at `+ i*16 + j*4`); `scratchPtr` is 1 KiB for the
// message schedule. Words are byte-swapped inside (i8x16.swizzle), so callers
// copy whole 32-bit words without converting them.
// Memory: 16 pages (1 MiB), exported as `memory`; the caller owns the layout
// below its top KiB (the round constants).
// Run: node scripts/gen-sha256-simd.mjs > src/merkle/sha256-simd-wasm.ts
const K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]
const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]

const uleb = (n) => { const o = []; do { let b = n & 0x7f; n >>>= 7; if (n !== 0) b |= 0x80; o.push(b) } while (n !== 0); return o }
const sleb = (n) => { const o = []; for (;;) { const b = n & 0x7f; n >>= 7; if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { o.push(b); return o } o.push(b | 0x80) } }
const section = (id, body) => [id, ...uleb(body.length), ...body]
const vec = (items) => [...uleb(items.length), ...items.flat()]
const name = (s) => vec([...Buffer.from(s)].map(b => [b]))

// instructions
const SIMD = (op) => [0xfd, ...uleb(op)]
const get = (l) => [0x20, ...uleb(l)]
const tee = (l) => [0x22, ...uleb(l)]
const set = (l) => [0x21, ...uleb(l)]
const i32 = (v) => [0x41, ...sleb(v | 0)]
const load = (offset) => [...SIMD(0x00), 4, ...uleb(offset)]
const store = (offset) => [...SIMD(0x0b), 4, ...uleb(offset)]
const splat = (v) => [...i32(v), ...SIMD(0x11)]
const and = SIMD(0x4e); const or = SIMD(0x50); const xor = SIMD(0x51); const bitselect = SIMD(0x52)
const shl = SIMD(0xab); const shrU = SIMD(0xad); const add = SIMD(0xae)
const swizzle = SIMD(0x0e)
// i8x16.swizzle mask reversing the bytes of each 32-bit lane (big-endian words <-> memory order)
const bswap = [...SIMD(0x0c), 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, ...swizzle]

// locals: 0 groups, 1 outPtr, 2 scratchPtr (params), 3 inPtr, 4 loop offset, then v128s
const P_GROUPS = 0; const P_OUT = 1; const P_SCRATCH = 2; const L_IN = 3; const L_Q = 4
let next = 5
const S = Array.from({ length: 8 }, () => next++) // working variables a..h
const H0 = Array.from({ length: 8 }, () => next++) // chaining state
const W = Array.from({ length: 2 }, () => next++) // schedule temporaries
const T1 = next++; const T2 = next++
const V128_LOCALS = next - 5

const rotr = (x, n) => [...get(x), ...i32(n), ...shrU, ...get(x), ...i32(32 - n), ...shl, ...or]
const bigSigma = (x, a, b, c) => [...rotr(x, a), ...rotr(x, b), ...xor, ...rotr(x, c), ...xor]
const smallSigma = (x, a, b, c) => [...rotr(x, a), ...rotr(x, b), ...xor, ...get(x), ...i32(c), ...shrU, ...xor]

/** Where the data segment puts the round constants, each splatted to 4 lanes (top 1 KiB of memory). */
const K_PTR = 16 * 65536 - 1024

/**
 * One block at `base` (byte offset from inPtr). The code is small loops, not
 * 128 unrolled rounds: unrolled, the module's machine code outgrows the
 * instruction cache and runs slower. The message schedule is expanded into
 * the scratch area (one word per iteration), then the rounds run 8 per
 * iteration (after 8 rounds the renamed working variables are back in
 * place), reading w[t] and K[t] from memory; only the 8 working variables
 * and two temporaries stay live, which fits the 16 vector registers of x64.
 */
function block (base) {
  const code = []
  for (let t = 0; t < 16; t++) { code.push(...get(P_SCRATCH), ...get(L_IN), ...load(base + t * 16), ...bswap, ...store(t * 16)) }
  // q = scratch; do { w[q+16] = σ1(w[q+14]) + w[q+9] + σ0(w[q+1]) + w[q] } while ((q += 16) != scratch + 48*16)
  code.push(...get(P_SCRATCH), ...set(L_Q))
  code.push(0x03, 0x40)
  code.push(...get(L_Q))
  code.push(...get(L_Q), ...load(1 * 16), ...set(W[0]), ...smallSigma(W[0], 7, 18, 3))
  code.push(...get(L_Q), ...load(14 * 16), ...set(W[1]), ...smallSigma(W[1], 17, 19, 10), ...add)
  code.push(...get(L_Q), ...load(9 * 16), ...add, ...get(L_Q), ...load(0), ...add)
  code.push(...store(16 * 16))
  code.push(...get(L_Q), ...i32(16), 0x6a, ...tee(L_Q), ...get(P_SCRATCH), ...i32(48 * 16), 0x6a, 0x47, 0x0d, 0)
  code.push(0x0b)
  for (let i = 0; i < 8; i++) { code.push(...get(H0[i]), ...set(S[i])) }
  // t = 0; do { 8 rounds at w[t..t+8), K[t..t+8) } while ((t += 8*16) != 64*16)
  code.push(...i32(0), ...set(L_Q))
  code.push(0x03, 0x40)
  for (let i = 0; i < 8; i++) {
    const r = (j) => S[(j - i + 8) % 8]
    const [A, B, C, D, E, F, G, Hh] = [0, 1, 2, 3, 4, 5, 6, 7].map(r)
    // t1 = h + Σ1(e) + ch(e, f, g) + K[t] + w[t]; ch = bitselect(f, g, e)
    code.push(...get(Hh), ...bigSigma(E, 6, 11, 25), ...add, ...get(F), ...get(G), ...get(E), ...bitselect, ...add,
      ...get(L_Q), ...load(K_PTR + i * 16), ...add, ...get(L_Q), ...get(P_SCRATCH), 0x6a, ...load(i * 16), ...add, ...set(T1))
    // t2 = Σ0(a) + maj(a, b, c); maj = bitselect(c, a, a ^ b)
    code.push(...bigSigma(A, 2, 13, 22), ...get(C), ...get(A), ...get(A), ...get(B), ...xor, ...bitselect, ...add, ...set(T2))
    code.push(...get(D), ...get(T1), ...add, ...set(D))
    code.push(...get(T1), ...get(T2), ...add, ...set(Hh))
  }
  code.push(...get(L_Q), ...i32(8 * 16), 0x6a, ...tee(L_Q), ...i32(64 * 16), 0x47, 0x0d, 0)
  code.push(0x0b)
  for (let i = 0; i < 8; i++) { code.push(...get(H0[i]), ...get(S[i]), ...add, ...set(H0[i])) }
  return code
}

const body = []
// block $done; loop $next; if groups == 0 break
body.push(0x02, 0x40, 0x03, 0x40)
body.push(...get(P_GROUPS), 0x45, 0x0d, 1)
for (let i = 0; i < 8; i++) { body.push(...splat(IV[i]), ...set(H0[i])) }
body.push(...block(0), ...block(256))
for (let i = 0; i < 8; i++) { body.push(...get(P_OUT), ...get(H0[i]), ...bswap, ...store(i * 16)) }
body.push(...get(L_IN), ...i32(512), 0x6a, ...set(L_IN))
body.push(...get(P_OUT), ...i32(128), 0x6a, ...set(P_OUT))
body.push(...get(P_GROUPS), ...i32(1), 0x6b, ...set(P_GROUPS))
body.push(0x0c, 0) // br $next
body.push(0x0b, 0x0b, 0x0b) // end loop, end block, end func
const locals = [...vec([[2, 0x7f], [...uleb(V128_LOCALS), 0x7b]])]
const func = [...locals, ...body]

const bytes = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, 3, 0x7f, 0x7f, 0x7f, 0]])),
  ...section(3, vec([[0]])),
  ...section(5, vec([[0x00, 16]])),
  ...section(7, vec([[...name('memory'), 0x02, 0], [...name('hash'), 0x00, 0]])),
  ...section(10, vec([[...uleb(func.length), ...func]])),
  // data: K splatted to 4 lanes, little-endian, at K_PTR
  ...section(11, vec([[0x00, ...i32(K_PTR), 0x0b, ...vec(K.flatMap(k => [0, 1, 2, 3].flatMap(() => [k & 0xff, (k >>> 8) & 0xff, (k >>> 16) & 0xff, k >>> 24]).map(b => [b])))]]))
]
const b64 = Buffer.from(bytes).toString('base64')
const out = []
out.push('/**')
out.push(' * A WebAssembly SIMD module hashing four two-block SHA-256 messages at once,')
out.push(' * generated by scripts/gen-sha256-simd.mjs (do not edit; the script documents')
out.push(' * the memory layout). Used through `sha256-lanes.ts`.')
out.push(' */')
out.push('')
out.push(`export const SHA256_SIMD_WASM = '${b64}'`)
process.stdout.write(out.join('\n') + '\n')
