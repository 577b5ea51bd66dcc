/** Collects pino's JSON log lines in memory, so tests can assert what operators see. */
import { Writable } from 'node:stream';

export interface LogLine {
  readonly level: number;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

export class LogCapture extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(...String(chunk).split('\n').filter((line) => line !== ''));
    done();
  }

  /** Every line as parsed JSON. */
  entries(): LogLine[] {
    return this.lines.map((line) => JSON.parse(line) as LogLine);
  }

  /** All output as one text, to check that something never appears anywhere. */
  text(): string {
    return this.lines.join('\n');
  }
}
