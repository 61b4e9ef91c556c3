// Atomic checkpoints: a writer killed at any stage of a save leaves a complete checkpoint (the
// previous one, or the new one once it is in place), and the next save cleans up after it.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AdamW } from '../../src/train/optim.js';
import { findCheckpoint, readCheckpoint, saveCheckpoint, restoreCheckpoint } from '../../src/train/checkpoint.js';
import { freshParams, tmpDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./checkpoint-crash.ts', import.meta.url));

// Stage → the step of the checkpoint a resumed run must find: mid-write (the temp directory is
// incomplete), between the two renames (only checkpoint.old/ exists), and just after publishing.
// (The other stages, 'model.safetensors', 'state.json' and 'synced', are like the first.)
const STAGES: [string, number][] = [['optimizer.safetensors', 1], ['moved-old', 1], ['published', 2]];

/** Runs the crashing writer; resolves with the signal that ended it. */
function crash(dir: string, stage: string): Promise<{ signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, stage]);
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (_code, signal) => resolve({ signal, stderr }));
  });
}

it('a writer killed at any stage of a save leaves a complete checkpoint, and the next save cleans up', async () => {
  // All crashes at once (each child is a fresh process), then check each directory.
  const dirs = STAGES.map(() => tmpDir('ckpt'));
  const results = await Promise.all(STAGES.map(([stage], i) => crash(dirs[i], stage)));
  const normOf = new Map<number, Float32Array>();
  STAGES.forEach(([stage, expected], i) => {
    const dir = dirs[i];
    assert.equal(results[i].signal, 'SIGKILL', `${stage}: the child should die by SIGKILL: ${results[i].stderr}`);
    const found = findCheckpoint(dir);
    assert.ok(found, `${stage}: a checkpoint is found`);
    const ckpt = readCheckpoint(found);
    assert.equal(ckpt.state.step, expected, `${stage}: checkpoint step`);
    assert.equal(ckpt.optimizer.step, expected, `${stage}: optimizer state from the same checkpoint`);
    normOf.set(expected, ckpt.params.get('model.norm.weight')!);
    // It restores into a model of the same shape.
    const params = freshParams('llama', 99);
    const opt = new AdamW(params, { lr: 1e-3 });
    restoreCheckpoint(ckpt, params, opt);
    assert.deepEqual(params.get('model.norm.weight')!.f32, ckpt.params.get('model.norm.weight'));
    // The next save replaces whatever the crash left: one clean checkpoint, no temp or old dirs.
    saveCheckpoint(dir, params, opt, { ...ckpt.state, step: 3 });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['checkpoint'], `${stage}: leftovers`);
    assert.equal(readCheckpoint(findCheckpoint(dir)!).state.step, 3);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'checkpoint')).sort(), ['model.safetensors', 'optimizer.safetensors', 'state.json']);
    fs.rmSync(dir, { recursive: true });
  });
  // The two checkpoints really differ, so the test can tell which one survived.
  assert.notDeepEqual(normOf.get(1), normOf.get(2));
});
