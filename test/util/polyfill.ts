/**
 * Test entry points run on Node 20 too: install the polyfill the package no
 * longer installs on import (see `src/polyfill.ts`).
 */
import { installPolyfills } from '../../src/polyfill.ts'

installPolyfills()
