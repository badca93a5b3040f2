// Generates src/merkle/sha256-simd-wasm.ts: a WebAssembly SIMD module that
// hashes independent SHA-256 messages four per i32x4 (one message per lane),
// two such groups of four side by side. Every leaf (u64 position ‖ operation)
// and every node (u64 position ‖ left ‖ right, 72 bytes) of the Merkle code is
// a one- or two-block message, and a batch has thousands of independent ones
// (its leaves, then each level of new nodes).
//
// Exports (layouts in detail at msgsBody and nodesBody below):
// - msgs(pairs, blocks, inPtr, outDescPtr, scratchPtr): messages of `blocks`
//   blocks each, already padded and laid out lane-interleaved at inPtr; the
//   digest of message m goes to the address stored at outDescPtr + 4m.
// - nodes(pairs, descPtr, scratchPtr): nodes described by position and child
//   and digest addresses (20 words per four); the module gathers the children
//   from anywhere in memory and adds the padding itself, so callers whose
//   digests live in this memory copy nothing per node.
// `scratchPtr` is 2112 bytes for the message schedules. Words are byte-swapped
// inside (i8x16.swizzle), so callers copy whole 32-bit words unconverted.
// Memory: 16 pages (1 MiB) to start, growable, exported as `memory`; the
// caller owns everything but the top KiB of the first MiB (round constants).
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

const uleb = (n) => { const o = []; do { let b = n & 0x7f; n >>>= 7; if (n !== 0) { b |= 0x80 } o.push(b) } while (n !== 0); return o }
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

const i32load = (offset) => [0x28, 2, ...uleb(offset)]
const i32add = 0x6a
// i8x16.shuffle picking 32-bit elements (0..3 from the first operand, 4..7 from the second)
const shuffle32 = (idx) => [...SIMD(0x0d), ...idx.flatMap(e => [4 * e, 4 * e + 1, 4 * e + 2, 4 * e + 3])]
const v128const = (words) => [...SIMD(0x0c), ...words.flatMap(w => [w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24])]

/** Groups of four lanes hashed side by side: the rounds are latency-bound, so two independent groups overlap. */
const G = 2
// Both functions share the local numbering: i32 params/locals first, then the v128s.
// msgs(pairs, blocks, inPtr, outDescPtr, scratchPtr): 5 params, +3 i32 (loop offset, blocks left, address)
// nodes(pairs, descPtr, scratchPtr): 3 params, +3 i32 (loop offset, address, blocks left), +2 unused to keep the numbering
const P_PAIRS = 0
const I32_LOCALS = 8
let next = I32_LOCALS
const lanes = () => Array.from({ length: G }, (_, g) => ({
  g,
  S: Array.from({ length: 8 }, () => next++), // working variables a..h (free outside compress: transpose temporaries)
  H0: Array.from({ length: 8 }, () => next++), // chaining state
  W: [next++, next++], // schedule temporaries
  T1: next++,
  T2: next++,
  X: [next++, next++] // a ^ b of the last two rounds (maj shares one xor with the round before)
}))
const GS = lanes()
const V128_LOCALS = next - I32_LOCALS

const rotr = (x, n) => [...get(x), ...i32(n), ...shrU, ...get(x), ...i32(32 - n), ...shl, ...or]
const bigSigma = (x, a, b, c) => [...rotr(x, a), ...rotr(x, b), ...xor, ...rotr(x, c), ...xor]
const smallSigma = (x, a, b, c) => [...rotr(x, a), ...rotr(x, b), ...xor, ...get(x), ...i32(c), ...shrU, ...xor]

/** Where the data segment puts the round constants, each splatted to 4 lanes (top 1 KiB of the first MiB). */
const K_PTR = 16 * 65536 - 1024
/** Each group's message schedule: 64 words of 4 lanes at `scratch + g * SCHED`, then 2 words of nodes' block 2 (TAIL_AT). */
const SCHED = 1024 + 32
const TAIL_AT = 1024

/**
 * One compression per group of the 16 big-endian words already in its
 * schedule area (`w[t]` of the four lanes at `scratch + g*SCHED + 16t`) into
 * its H0..H7. The code is small loops, not 64 unrolled rounds: unrolled, the
 * module's machine code outgrows the instruction cache and runs slower. The
 * rounds run 8 per loop iteration (after 8 rounds the renamed working
 * variables are back in place), reading w[t] and K[t] from memory; the first
 * 48 also expand the schedule 16 words ahead (w[t+16]), so its dependency
 * chain overlaps the rounds' instead of running as a phase of its own (~12%
 * faster measured). The groups' rounds are emitted interleaved: each round
 * is a chain of dependent operations (the rounds are latency-bound), and
 * the other group's independent chain fills the gaps (~20% faster measured
 * than one group; three or four groups spill and are no faster).
 *
 * @param {number} scratch - i32 local: the schedule areas
 * @param {number} q - i32 local free for the loop offsets
 * @param {number} addr - i32 local free for addresses
 */
function compress (scratch, q, addr) {
  const code = []
  for (const { S, H0, X } of GS) {
    for (let i = 0; i < 8; i++) { code.push(...get(H0[i]), ...set(S[i])) }
    code.push(...get(S[1]), ...get(S[2]), ...xor, ...set(X[1]))
  }
  // 8 rounds at w[t..t+8), K[t..t+8) (t = q/16), and with `expand` the schedule words w[t+16..t+24)
  const rounds = (expand) => {
    for (let i = 0; i < 8; i++) {
      for (const { g, S, W, T1, T2, X } of GS) {
        const r = (j) => S[(j - i + 8) % 8]
        const [A, B, , D, E, F, Gg, Hh] = [0, 1, 2, 3, 4, 5, 6, 7].map(r)
        const o = g * SCHED + i * 16
        // t1 = h + K[t] + w[t] + ch(e, f, g) + Σ1(e), ch = bitselect(f, g, e): summed in this order so that only Σ1(e)
        // and one add sit on the round-to-round dependency chain (e -> next e); this order measured ~10% faster
        // than summing Σ1 first
        code.push(...get(Hh), ...get(q), ...load(K_PTR + i * 16), ...add, ...get(q), ...get(scratch), i32add, ...load(o), ...add,
          ...get(F), ...get(Gg), ...get(E), ...bitselect, ...add, ...bigSigma(E, 6, 11, 25), ...add, ...set(T1))
        // t2 = maj(a, b, c) + Σ0(a); maj = b ^ ((a ^ b) & (b ^ c)), where b ^ c is the last round's a ^ b
        code.push(...get(A), ...get(B), ...xor, ...set(X[i & 1]))
        code.push(...get(B), ...get(X[i & 1]), ...get(X[(i + 1) & 1]), ...and, ...xor, ...bigSigma(A, 2, 13, 22), ...add, ...set(T2))
        code.push(...get(D), ...get(T1), ...add, ...set(D))
        code.push(...get(T1), ...get(T2), ...add, ...set(Hh))
        if (expand) {
          // w[t+16] = σ1(w[t+14]) + w[t+9] + σ0(w[t+1]) + w[t]: its own dependency chain (through w[t+14]),
          // which runs in the gaps of the rounds' chain instead of as a phase of its own
          code.push(...get(q), ...get(scratch), i32add, ...tee(addr))
          code.push(...get(addr), ...load(o + 1 * 16), ...set(W[0]), ...smallSigma(W[0], 7, 18, 3))
          code.push(...get(addr), ...load(o + 14 * 16), ...set(W[1]), ...smallSigma(W[1], 17, 19, 10), ...add)
          code.push(...get(addr), ...load(o + 9 * 16), ...add, ...get(addr), ...load(o), ...add)
          code.push(...store(o + 16 * 16))
        }
      }
    }
  }
  // t = 0; do { 8 rounds, expanding the schedule } while ((t += 8*16) != 48*16); do { 8 rounds } while (t != 64*16)
  code.push(...i32(0), ...set(q))
  code.push(0x03, 0x40)
  rounds(true)
  code.push(...get(q), ...i32(8 * 16), i32add, ...tee(q), ...i32(48 * 16), 0x47, 0x0d, 0)
  code.push(0x0b)
  code.push(0x03, 0x40)
  rounds(false)
  code.push(...get(q), ...i32(8 * 16), i32add, ...tee(q), ...i32(64 * 16), 0x47, 0x0d, 0)
  code.push(0x0b)
  for (const { S, H0 } of GS) {
    for (let i = 0; i < 8; i++) { code.push(...get(H0[i]), ...get(S[i]), ...add, ...set(H0[i])) }
  }
  return code
}

/**
 * Transpose 4x4 words (row j = lane j, or the reverse).
 *
 * @param {number[]} r - the 4 v128 locals read
 * @param {number[]} c - the 4 v128 locals written
 * @param {number[]} t - 4 v128 locals used as temporaries
 */
function transpose (r, c, t) {
  return [
    ...get(r[0]), ...get(r[1]), ...shuffle32([0, 4, 1, 5]), ...set(t[0]),
    ...get(r[2]), ...get(r[3]), ...shuffle32([0, 4, 1, 5]), ...set(t[1]),
    ...get(r[0]), ...get(r[1]), ...shuffle32([2, 6, 3, 7]), ...set(t[2]),
    ...get(r[2]), ...get(r[3]), ...shuffle32([2, 6, 3, 7]), ...set(t[3]),
    ...get(t[0]), ...get(t[1]), ...shuffle32([0, 1, 4, 5]), ...set(c[0]),
    ...get(t[0]), ...get(t[1]), ...shuffle32([2, 3, 6, 7]), ...set(c[1]),
    ...get(t[2]), ...get(t[3]), ...shuffle32([0, 1, 4, 5]), ...set(c[2]),
    ...get(t[2]), ...get(t[3]), ...shuffle32([2, 3, 6, 7]), ...set(c[3])
  ]
}

/** Set every group's H0..H7 to the initial hash value. */
const initState = () => GS.flatMap(({ H0 }) => H0.flatMap((h, i) => [...splat(IV[i]), ...set(h)]))

/**
 * Write the digest of lane j of group g (its H0..H7 transposed, back in
 * memory byte order) to the 32 bytes at the i32 pointer stored at
 * `ptrs + stride*g + 4j`.
 *
 * @param {number} ptrs - i32 local: address of group 0's four digest pointers
 * @param {number} stride - bytes between two groups' pointers
 */
function storeDigests (ptrs, stride) {
  const code = []
  for (const { g, S, H0 } of GS) {
    const rows = [S[0], S[1], S[2], S[3]]
    const tmp = [S[4], S[5], S[6], S[7]]
    for (let half = 0; half < 2; half++) {
      for (let i = 0; i < 4; i++) { code.push(...get(H0[4 * half + i]), ...bswap, ...set(H0[4 * half + i])) }
      code.push(...transpose(H0.slice(4 * half, 4 * half + 4), rows, tmp))
      for (let j = 0; j < 4; j++) { code.push(...get(ptrs), ...i32load(stride * g + 4 * j), ...get(rows[j]), ...store(16 * half)) }
    }
  }
  return code
}

// ---- msgs(pairs, blocks, inPtr, outDescPtr, scratchPtr) ----
// Messages already laid out lane-interleaved, in pairs of groups of four
// (message 8p + 4g + j is lane j of group g of pair p): block b of group g of
// pair p at `inPtr + ((p*blocks + b)*2 + g)*256`, word t of lane j at
// `+ t*16 + j*4`, in memory byte order, padding included. The digest of
// message m goes to the pointer at `outDescPtr + 4m`.
function msgsBody () {
  const [pBlocks, pIn, pOut, pScratch, lQ, lLeft, lAddr] = [1, 2, 3, 4, 5, 6, 7]
  const body = []
  body.push(0x02, 0x40, 0x03, 0x40)
  body.push(...get(P_PAIRS), 0x45, 0x0d, 1)
  body.push(...initState(), ...get(pBlocks), ...set(lLeft))
  // do { load 16 words per group with byte swap; compress; inPtr += 512 } while (--left)
  body.push(0x03, 0x40)
  for (let g = 0; g < G; g++) {
    for (let t = 0; t < 16; t++) { body.push(...get(pScratch), ...get(pIn), ...load(g * 256 + t * 16), ...bswap, ...store(g * SCHED + t * 16)) }
  }
  body.push(...compress(pScratch, lQ, lAddr))
  body.push(...get(pIn), ...i32(G * 256), i32add, ...set(pIn))
  body.push(...get(lLeft), ...i32(1), 0x6b, ...tee(lLeft), 0x0d, 0)
  body.push(0x0b)
  body.push(...storeDigests(pOut, 16))
  body.push(...get(pOut), ...i32(G * 16), i32add, ...set(pOut))
  body.push(...get(P_PAIRS), ...i32(1), 0x6b, ...set(P_PAIRS))
  body.push(0x0c, 0)
  body.push(0x0b, 0x0b, 0x0b)
  return body
}

// ---- nodes(pairs, descPtr, scratchPtr) ----
// Node messages u64be(pos) ‖ left ‖ right (72 bytes) gathered by the kernel.
// Per group of four, 20 i32 at `descPtr + 80*group`: the position's high
// word of lanes 0..3, its low word, then the left-child, right-child and
// digest pointers of lanes 0..3. Position words are stored byte-swapped
// (memory order of the big-endian encoding); children and digests are 32
// bytes in memory byte order, anywhere in memory.
function nodesBody () {
  const [pDesc, pScratch, lQ, lAddr, lLeft] = [1, 2, 3, 4, 5]
  const body = []
  const storeW = (g, t, v) => [...get(pScratch), ...v, ...bswap, ...store(g * SCHED + t * 16)]
  body.push(0x02, 0x40, 0x03, 0x40)
  body.push(...get(P_PAIRS), 0x45, 0x0d, 1)
  for (const { g, S, W, T1, T2 } of GS) {
    const d = g * 80
    const rows = [S[0], S[1], S[2], S[3]]
    const cols = [S[4], S[5], S[6], S[7]]
    const tmp = [W[0], W[1], T1, T2]
    body.push(...storeW(g, 0, [...get(pDesc), ...load(d)]), ...storeW(g, 1, [...get(pDesc), ...load(d + 16)]))
    // children: for each of left[0..16), left[16..32), right[0..16), right[16..32): load four lanes' rows, transpose
    // into message words 2 + 4k .. 5 + 4k
    for (let k = 0; k < 4; k++) {
      const ptrOff = d + (k < 2 ? 32 : 48)
      for (let j = 0; j < 4; j++) { body.push(...get(pDesc), ...i32load(ptrOff + 4 * j), ...load(16 * (k & 1)), ...set(rows[j])) }
      body.push(...transpose(rows, cols, tmp))
      for (let i = 0; i < 4; i++) {
        const t = 2 + 4 * k + i
        // words 16 and 17 (the last of the right child) wait beside the schedule for block 2: kept in locals
        // across the first compression they would cost the rounds registers
        body.push(...storeW(g, t < 16 ? t : TAIL_AT / 16 + t - 16, get(cols[i])))
      }
    }
  }
  // two compressions through one copy of the code (two copies outgrow the CPU's decoded-instruction cache):
  // left = 2; block { loop { compress; if (--left == 0) break; lay out block 2; continue } }
  body.push(...initState(), ...i32(2), ...set(lLeft))
  body.push(0x02, 0x40, 0x03, 0x40)
  body.push(...compress(pScratch, lQ, lAddr))
  body.push(...get(lLeft), ...i32(1), 0x6b, ...tee(lLeft), 0x45, 0x0d, 1)
  // block 2 words: w0, w1 = the tail of the right child, w2 = 0x80000000 (the padding bit), w15 = 576 (bit length)
  for (const { g } of GS) {
    const o = g * SCHED
    for (let t = 0; t < 2; t++) { body.push(...get(pScratch), ...get(pScratch), ...load(o + TAIL_AT + 16 * t), ...store(o + 16 * t)) }
    for (let t = 2; t < 16; t++) {
      let v = 0
      if (t === 2) { v = 0x80000000 } else if (t === 15) { v = 72 * 8 }
      body.push(...get(pScratch), ...v128const([v, v, v, v]), ...store(o + t * 16))
    }
  }
  body.push(0x0c, 0, 0x0b, 0x0b)
  body.push(...get(pDesc), ...i32(64), i32add, ...set(lQ), ...storeDigests(lQ, 80))
  body.push(...get(pDesc), ...i32(G * 80), i32add, ...set(pDesc))
  body.push(...get(P_PAIRS), ...i32(1), 0x6b, ...set(P_PAIRS))
  body.push(0x0c, 0)
  body.push(0x0b, 0x0b, 0x0b)
  return body
}

const locals = (extraI32) => [...vec([[...uleb(extraI32), 0x7f], [...uleb(V128_LOCALS), 0x7b]])]
const msgsFunc = [...locals(3), ...msgsBody()]
const nodesFunc = [...locals(5), ...nodesBody()]

const bytes = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0], [0x60, 3, 0x7f, 0x7f, 0x7f, 0]])),
  ...section(3, vec([[0], [1]])),
  ...section(5, vec([[0x00, 16]])),
  ...section(7, vec([[...name('memory'), 0x02, 0], [...name('msgs'), 0x00, 0], [...name('nodes'), 0x00, 1]])),
  ...section(10, vec([[...uleb(msgsFunc.length), ...msgsFunc], [...uleb(nodesFunc.length), ...nodesFunc]])),
  // data: K splatted to 4 lanes, little-endian, at K_PTR
  ...section(11, vec([[0x00, ...i32(K_PTR), 0x0b, ...vec(K.flatMap(k => [0, 1, 2, 3].flatMap(() => [k & 0xff, (k >>> 8) & 0xff, (k >>> 16) & 0xff, k >>> 24]).map(b => [b])))]]))
]
const b64 = Buffer.from(bytes).toString('base64')
const out = []
out.push('/**')
out.push(' * A WebAssembly SIMD module hashing eight one- or two-block SHA-256 messages at once,')
out.push(' * generated by scripts/gen-sha256-simd.mjs (do not edit; the script documents')
out.push(' * the memory layout). Used through `sha256-lanes.ts`.')
out.push(' */')
out.push('')
out.push(`export const SHA256_SIMD_WASM = '${b64}'`)
process.stdout.write(out.join('\n') + '\n')
