/**
 * The application's hooks (onLockFile, onUnlockFile, onLock), run on the caller's thread for the
 * hosts, which call them through comlink (protocol.ts HookRunner) and wait for the verdict.
 *
 * While an approval hook runs, its file's actor waits for the verdict: a request the hook makes on
 * the same file could only wait for the hook itself. Such a call is refused at once (hookScope: an
 * AsyncLocalStorage scope around the running hook, which LockCoordinator.submit consults).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ENOLCK, ERROR_LOCK_VIOLATION } from '../core/codes.js';
import type { HookRunner } from '../wire/protocol.js';
import type { Options } from './options.js';

/** A hook running on this thread, for the requests it makes. */
export interface HookScope {
  readonly path: string;
  readonly hook: string;
  running: boolean;
}

export const hookScope = new AsyncLocalStorage<HookScope>();

/** Runs the application's hooks for the hosts; `report` counts and reports a hook's failure. */
export function hookRunner(o: Options, report: (hook: string, message: string) => void): HookRunner {
  return {
    approve: async (family, event) => {
      const hook = family === 'windows' ? o.onLockFile : o.onLock;
      const name = family === 'windows' ? 'onLockFile' : 'onLock';
      const generic = family === 'windows' ? ERROR_LOCK_VIOLATION : -ENOLCK;
      if (hook === undefined) return 0;
      const scope: HookScope = { path: String(event.fileName ?? event.path), hook: name, running: true };
      let r: unknown;
      try {
        r = await hookScope.run(scope, hook, event);
      } catch (e) {
        report(name, e instanceof Error ? e.message : String(e));
        return generic;
      } finally {
        scope.running = false;
      }
      if (r === undefined || r === 0) return 0;
      // A Win32 code is a DWORD (1 to 0xFFFFFFFF); an errno vetoes as its negative.
      if (typeof r === 'number' && Number.isInteger(r) && (family === 'windows' ? r > 0 && r <= 0xffffffff : r < 0)) return r;
      report(name, `returned ${shown(r)}, which is not ${family === 'windows' ? 'a Win32 code (an integer from 1 to 0xFFFFFFFF)' : 'a negative errno'}`);
      return generic;
    },
    released: async (family, event) => {
      const hook = family === 'windows' ? o.onUnlockFile : o.onLock;
      try {
        await hook?.(event);
      } catch (e) {
        report(family === 'windows' ? 'onUnlockFile' : 'onLock', e instanceof Error ? e.message : String(e));
      }
    },
  };
}

/** A hook's answer as a warning shows it: its type, where its text alone would hide it ('33', 33n). */
function shown(r: unknown): string {
  if (typeof r === 'string') return `the string ${JSON.stringify(r)}`;
  if (typeof r === 'bigint') return `the bigint ${r}n`;
  if (typeof r === 'number') return String(r);
  return `${r === null ? 'null' : typeof r} ${String(r)}`;
}

/** Why a request from inside a hook on the same file is refused. */
export function reentryError(name: string, scope: HookScope): Error {
  return new Error(
    `locksmith: ${name} on '${scope.path}' was called from inside the ${scope.hook} hook deciding a lock on the same file; ` +
      `that file's requests wait for the hook's verdict, so this one could never run before the hook returns. ` +
      `Make the call after the hook has returned.`,
  );
}
