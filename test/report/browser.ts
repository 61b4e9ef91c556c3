// Headless Chromium for the report tests: a page's DOM after its scripts ran (--dump-dom) and
// a screenshot. Debian's `chromium` package (.ci/run installs it); CHROMIUM=/path overrides.
// A missing browser is an error that says how to install it: these tests never skip.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

export function findChromium(): string {
  if (process.env.CHROMIUM) {
    if (!fs.existsSync(process.env.CHROMIUM)) throw new Error(`CHROMIUM=${process.env.CHROMIUM}: no such file`);
    return process.env.CHROMIUM;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const name of CANDIDATES) {
      const p = path.join(dir, name);
      if (fs.existsSync(p)) return p;
    }
  }
  throw new Error('headless Chromium is needed to test the HTML report and was not found on PATH: install Debian\'s package ' +
    '(`apt-get install -y chromium`, as .ci/run does) or set CHROMIUM=/path/to/chrome');
}

/** Runs the browser on `file` with a fresh profile (tests may run browsers concurrently). */
function run(file: string, args: string[]): { stdout: string; stderr: string } {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-chromium-'));
  try {
    const r = spawnSync(findChromium(), [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions', '--hide-scrollbars',
      '--force-device-scale-factor=1', `--user-data-dir=${profile}`, ...args, pathToFileURL(file).href,
    ], { encoding: 'utf8', timeout: 90_000, maxBuffer: 256 << 20 });
    if (r.error) throw new Error(`chromium: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`chromium exited with ${r.status}: ${r.stderr.slice(-2000)}`);
    return { stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** The DOM after load (the page's scripts have run), laid out `width` pixels wide (the width of
 *  a later screenshot, so the figure boxes it records are where the screenshot shows them). */
export function dumpDom(file: string, width = 1400): string {
  return run(file, ['--dump-dom', '--virtual-time-budget=5000', `--window-size=${width},1000`]).stdout;
}

/** Screenshot PNG bytes at width × height, and the console messages Chromium logged. */
export function screenshot(file: string, width: number, height: number): { png: Buffer; console: string[] } {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kdqat-shot-')), 'shot.png');
  try {
    const { stderr } = run(file, [`--screenshot=${out}`, `--window-size=${width},${height}`, '--enable-logging=stderr', '--v=0']);
    if (!fs.existsSync(out)) throw new Error(`chromium wrote no screenshot: ${stderr.slice(-2000)}`);
    // Chromium logs a page's console messages (and errors) as INFO:CONSOLE lines.
    return { png: fs.readFileSync(out), console: stderr.split('\n').filter((l) => /:CONSOLE[(:]/.test(l)) };
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}
