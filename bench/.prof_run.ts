import { kernelProfile } from '../src/tensor/registry.js';
process.on('exit', () => { const p = kernelProfile(); let tot = 0; for (const e of p) tot += e.ms; console.error('total kernel ms', tot.toFixed(0)); for (const e of p.slice(0, 30)) console.error(e.name.padEnd(28), String(e.calls).padStart(6), e.ms.toFixed(0).padStart(8)); });
await import('./real_size_worker.js');
