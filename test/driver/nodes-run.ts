/**
 * What the `locksmith stress --nodes` tests that call the runner's main() in-process share: the
 * loud skip without redis-server (a failure in CI), and the text sinks main() writes to.
 */

/** Why the nodes target cannot run here (`unavailable`), said loudly for `file`; in CI (CI set) a failure. */
export function skipLoudly(file: string, unavailable: string | undefined): void {
  if (unavailable === undefined) return;
  if (process.env.CI) throw new Error(`the nodes target needs redis-server in CI: ${unavailable}`);
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! SKIPPING ${file}: ${unavailable} (in CI, with CI set, this is a failure)\n${bar}\n`);
}

/** A stream main() writes to, keeping what it wrote in `text`. */
export function sink(): { write(s: string): boolean; text: string } {
  const o = {
    text: '',
    write: (s: string) => {
      o.text += s;
      return true;
    },
  };
  return o;
}
