/**
 * Live progress: a cli-progress bar on a terminal (ops/s, waiting requests, elapsed and
 * remaining), plain periodic lines otherwise (CI logs, pipes).
 */
import cliProgress from 'cli-progress';
import type { Progress } from './stage.js';

const PLAIN_EVERY_SEC = 2;

/** Where progress goes: a bar when it is a terminal, plain lines otherwise. */
export type ProgressStream = { write(s: string): unknown; isTTY?: boolean };

export class ProgressDisplay {
  private bar: cliProgress.SingleBar | undefined;
  private lastPlain = -Infinity;

  constructor(private readonly out: ProgressStream = process.stderr) {}

  /** A new stage; returns the callback the stage reports to. */
  stage(label: string): (p: Progress) => void {
    this.end();
    if (this.out.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${label.padEnd(16)} {bar} {percentage}% | {ops} ops | {rate} ops/s | waiting {waiting} | {elapsed} s, {remaining} s left`,
          stream: this.out as NodeJS.WriteStream,
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(1000, 0, { ops: 0, rate: 0, waiting: 0, elapsed: '0.0', remaining: '?' });
      return (p) => this.bar?.update(Math.round(p.done * 1000), fields(p));
    }
    this.lastPlain = -Infinity;
    return (p) => {
      if (p.elapsedSec - this.lastPlain < PLAIN_EVERY_SEC) return;
      this.lastPlain = p.elapsedSec;
      const f = fields(p);
      this.out.write(`${label}: ${f.elapsed} s, ${f.ops} ops, ${f.rate} ops/s, waiting ${f.waiting}, ${Math.round(p.done * 100)}% (${f.remaining} s left)\n`);
    };
  }

  end(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

function fields(p: Progress) {
  const remaining = p.done > 0 ? (p.elapsedSec * (1 - p.done)) / p.done : NaN;
  return {
    ops: p.ops.toLocaleString('en-US'),
    rate: Math.round(p.opsPerSec).toLocaleString('en-US'),
    waiting: p.waiting,
    elapsed: p.elapsedSec.toFixed(1),
    remaining: Number.isFinite(remaining) ? remaining.toFixed(1) : '?',
  };
}
