/** The targets a stage can run on, and whether each can run here. */
import type { Progress, StageResult, StageSpec, TargetName } from '../stage.js';
import { runApi } from './api.js';
import { runKernel } from './kernel.js';
import { mountUnavailable, runMount } from './mount.js';
import { processUnavailable } from './process.js';
import { pumpUnavailable, runPump } from './pump.js';
import { redisUnavailable } from '../redis-server.js';

/** Why `target` cannot run here (one clause), or undefined when it can. */
export async function availability(target: TargetName): Promise<string | undefined> {
  switch (target) {
    case 'api':
      return undefined;
    case 'pump':
      return pumpUnavailable();
    case 'mount':
      return mountUnavailable();
    case 'kernel':
      return processUnavailable();
    case 'nodes':
      return redisUnavailable();
  }
}

export function runTarget(spec: StageSpec, onProgress?: (p: Progress) => void): Promise<StageResult> {
  switch (spec.target) {
    case 'api':
      return runApi(spec, onProgress);
    case 'pump':
      return runPump(spec, onProgress);
    case 'mount':
      return runMount(spec, onProgress);
    case 'kernel':
      return runKernel(spec, onProgress);
    case 'nodes':
      return import('./nodes.js').then((m) => m.runNodes(spec, onProgress));
  }
}
