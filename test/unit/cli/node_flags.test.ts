// The Node options wkvm's launchers give the VMM's process: V8's background pool leaves two cores to the
// vCPU and disk I/O threads, never below one thread and never above Node's own default of four.
import { describe, expect, it } from 'vitest';
import { vmmNodeOptions } from '../../../host/cli/node_flags.js';

describe('vmmNodeOptions', () => {
  it('sizes V8\'s pool to the cores the VMM leaves free', () => {
    expect(vmmNodeOptions(1)).toEqual(['--v8-pool-size=1']);
    expect(vmmNodeOptions(2)).toEqual(['--v8-pool-size=1']);
    expect(vmmNodeOptions(4)).toEqual(['--v8-pool-size=2']);
    expect(vmmNodeOptions(6)).toEqual(['--v8-pool-size=4']);
    expect(vmmNodeOptions(64)).toEqual(['--v8-pool-size=4']);
  });

  it('gives options this Node accepts', () => {
    expect(process.allowedNodeEnvironmentFlags.has('--v8-pool-size')).toBe(true);
  });
});
