// Every suite, in the order `all` runs them.
import type { BenchSuite } from '../lib/suite.js';
import { intbenchSuite } from './intbench.js';
import { slicesSuite } from './slices.js';
import { microSuite } from './micro.js';

export const SUITES: readonly BenchSuite[] = [intbenchSuite, slicesSuite, microSuite];
