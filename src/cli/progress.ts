// Progress display for training commands: a cli-progress bar when stderr is a terminal, plain
// log lines (at most one per `everySeconds`, plus every evaluation) otherwise — piped output and
// log files should not fill with carriage returns.
import { createRequire } from 'node:module';
import type { Reporter } from '../train/loop.js';

// cli-progress ships no type declarations; this is the part of its API we use.
interface Bar {
  start(total: number, start: number, payload: Record<string, string>): void;
  update(value: number, payload: Record<string, string>): void;
  stop(): void;
}
interface CliProgress {
  SingleBar: new (opts: Record<string, unknown>, preset: unknown) => Bar;
  Presets: { shades_classic: unknown };
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

const fmtLr = (lr: number): string => lr.toExponential(2);
const fmtMetrics = (m: Record<string, number>): string =>
  Object.entries(m).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(', ');

export interface ProgressOptions {
  /** Force the bar (true) or plain lines (false); default: bar iff stderr is a TTY. */
  tty?: boolean;
  /** Plain mode: seconds between lines (default 10). */
  everySeconds?: number;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  label?: string;
}

/** A Reporter for the training loop: smoothed loss, lr, tokens/s and ETA. */
export function progressReporter(opts: ProgressOptions = {}): Reporter {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? !!stream.isTTY;
  const every = (opts.everySeconds ?? 10) * 1000;
  const label = opts.label ?? 'train';
  let total = 0, start = 0, ema = NaN, emaWeight = 0;
  let tokens = 0, seconds = 0; // since this process started training (for tokens/s and ETA)
  let lastLine = 0;
  let bar: Bar | null = null;
  const write = (text: string): void => { stream.write(`${text}\n`); };

  const payload = (loss: number, lr: number): Record<string, string> => ({
    loss: Number.isFinite(loss) ? loss.toFixed(4) : String(loss), lr: fmtLr(lr),
    tps: seconds > 0 ? Math.round(tokens / seconds).toLocaleString('en-US') : '?',
  });

  return {
    begin(totalSteps, startStep) {
      total = totalSteps;
      start = startStep;
      if (tty) {
        const cp = createRequire(import.meta.url)('cli-progress') as CliProgress;
        bar = new cp.SingleBar({
          format: `${label} {bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | ETA {eta_formatted}`,
          stream, hideCursor: false, gracefulExit: false, etaBuffer: 50, fps: 5,
        }, cp.Presets.shades_classic);
        bar.start(totalSteps, startStep, { loss: '-', lr: '-', tps: '?' });
      } else if (startStep > 0) write(`${label}: resuming at step ${startStep}/${totalSteps}`);
    },
    step(s) {
      // Bias-corrected exponential moving average of the loss (β = 0.95), as the display value.
      emaWeight = 0.95 * emaWeight + 0.05;
      ema = (Number.isNaN(ema) ? 0 : ema) * 0.95 + 0.05 * s.loss;
      const smooth = ema / emaWeight;
      tokens += s.tokens;
      seconds += s.seconds;
      if (bar) return bar.update(s.step, payload(smooth, s.lr));
      const now = Date.now();
      if (s.step === total || now - lastLine >= every || s.step === start + 1) {
        lastLine = now;
        const done = s.step - start, eta = done > 0 ? (seconds / done) * (total - s.step) : NaN;
        const p = payload(smooth, s.lr);
        write(`${label} step ${s.step}/${total} | loss ${p.loss} | lr ${p.lr} | ${p.tps} tok/s | ETA ${formatDuration(eta)}`);
      }
    },
    eval(step, metrics) {
      const text = `${label} eval @ step ${step}: ${fmtMetrics(metrics)}`;
      if (bar) {
        // Print above the bar: cli-progress redraws it on the next update.
        stream.write(`\r\x1b[K${text}\n`);
      } else write(text);
    },
    message(text) {
      if (bar) stream.write(`\r\x1b[K${text}\n`);
      else write(text);
    },
    end() {
      bar?.stop();
      bar = null;
    },
  };
}

/** A Reporter that prints nothing (library use, tests). */
export const silentReporter: Reporter = {
  begin() {}, step() {}, eval() {}, message() {}, end() {},
};
