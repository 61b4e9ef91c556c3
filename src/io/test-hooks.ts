// Crash points for the tests of kill -9 safety: KDQAT_TEST_KILL_AT=<point>[@<n>][,…] makes the
// process SIGKILL itself the n-th time (default 1st) it reaches <point>, e.g.
// `checkpoint:optimizer.safetensors@2` (during the second checkpoint save) or `student:swap`.
// Unset (always, outside tests), crashPoint is one environment lookup.
const counts = new Map<string, number>();

export function crashPoint(point: string): void {
  const spec = process.env.KDQAT_TEST_KILL_AT;
  if (!spec) return;
  const n = (counts.get(point) ?? 0) + 1;
  counts.set(point, n);
  for (const item of spec.split(',')) {
    const [name, at] = item.split('@');
    if (name === point && n === Number(at ?? 1)) process.kill(process.pid, 'SIGKILL');
  }
}
