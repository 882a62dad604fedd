/**
 * Which worker owns a file: FNV-1a over the path's UTF-16 units, modulo the number of workers. The
 * file -> worker map must never change while running, and the native pump computes the same
 * function in C++ (src/native/pump.cc fnv1a32) so every event of a file reaches the worker whose
 * actor owns it (test/native/pump.test.ts holds the two to the same answers).
 */
export function routeOf(path: string, workers: number): number {
  if (workers === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % workers;
}
