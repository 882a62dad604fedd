/** `locksmith stress`: placeholder until the runner lands. */
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write("locksmith: 'stress' is not part of this build yet.\n");
  return 2;
}
