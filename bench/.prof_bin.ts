import { kernelOf, registerKernels } from '../src/tensor/registry.js';
import '../src/backend/index.js';
const stats = new Map<string, {calls:number, ms:number}>();
for (const name of ['binary','adamw','unary','unaryBackward','fakeQuant','axpy','scatterAdd']) {
  const f = kernelOf('native', name as any)! as any;
  registerKernels('native', { [name]: ((...a: any[]) => { const t0 = performance.now(); const r = f(...a); const dt = performance.now()-t0;
    let key = name; if (name==='binary') key += ` op${a[0]} ${Array.from(a[4]).join('x')} as${Array.from(a[5]).join(',')} bs${Array.from(a[6]).join(',')}`; else if (name==='unary'||name==='unaryBackward') key += ` op${a[0]} n${a[1]?.length}`; else key += ` n${(a.find((x:any)=>x instanceof Float32Array))?.length}`;
    const e = stats.get(key) ?? {calls:0,ms:0}; e.calls++; e.ms+=dt; stats.set(key,e); return r; }) as any });
}
process.on('exit', () => { for (const [k,e] of [...stats].sort((a,b)=>b[1].ms-a[1].ms).slice(0,25)) console.error(k.padEnd(70), String(e.calls).padStart(5), e.ms.toFixed(0).padStart(7)); });
await import('./real_size_worker.js');
