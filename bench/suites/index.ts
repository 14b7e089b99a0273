// Every suite, in the order `all` runs them.
import type { BenchSuite } from '../lib/suite.js';
import { intbenchSuite } from './intbench.js';
import { slicesSuite } from './slices.js';
import { microSuite } from './micro.js';
import { bootSuite } from './boot.js';
import { diskSuite } from './disk.js';
import { smpSuite } from './smp.js';

export const SUITES: readonly BenchSuite[] = [intbenchSuite, slicesSuite, microSuite, bootSuite, diskSuite, smpSuite];
