// A small ONNX graph builder over onnx-proto (the ONNX protobuf definitions as protobufjs static
// code): initializers, nodes, graph inputs/outputs, and the ModelProto bytes. The emitters
// (onnx-decoder.ts, onnx-encoder.ts) and the weight writers (onnx-weights.ts) build on it; the
// file format itself is protobufjs's, not ours.
//
// Opset: ai.onnx 17 (LayerNormalization, no RMSNorm/Gelu ops: those are composed) and the
// com.microsoft domain for MatMulNBits (onnxruntime's contrib operators,
// docs/ContribOperators.md). IR version 8 (the newest onnx-proto knows; opset 17 needs ≥ 8).
import { createRequire } from 'node:module';
import type { onnx as OnnxNs } from 'onnx-proto';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as { onnx: typeof OnnxNs };

export const OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';
export const IR_VERSION = 8;

/** TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type ElemType = (typeof DT)[keyof typeof DT];

/** A float attribute (a bare number is an int attribute). */
export interface FloatAttr { f: number }
export const float = (f: number): FloatAttr => ({ f });
export type AttrValue = number | FloatAttr | number[] | string;

/** Tensor data by element type; FLOAT16 takes the raw half bits. */
export type InitData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array | Uint16Array;

function bytesOf(d: InitData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function attribute(name: string, v: AttrValue): OnnxNs.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`ONNX attribute ${name}: ${v} is not an integer; pass float(${v}) for a float attribute`);
    return { name, type: A.INT, i: v };
  }
  return { name, type: A.FLOAT, f: v.f };
}

/** Dimension: a number, or a name for a dynamic axis ("batch_size", "sequence_length"). */
export type Dim = number | string;

function valueInfo(name: string, elem: ElemType, dims: Dim[]): OnnxNs.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export class OnnxGraph {
  private readonly nodes: OnnxNs.INodeProto[] = [];
  private readonly inits: OnnxNs.ITensorProto[] = [];
  private readonly inputs: OnnxNs.IValueInfoProto[] = [];
  private readonly outputs: OnnxNs.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  private counter = 0;
  usesMs = false;

  /** A fresh value name from `hint` (unique in the graph). */
  fresh(hint: string): string {
    let n = hint;
    while (this.names.has(n)) n = `${hint}_${++this.counter}`;
    this.names.add(n);
    return n;
  }

  input(name: string, elem: ElemType, dims: Dim[]): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: input "${name}" already defined`);
    this.names.add(name);
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** Declares `value` a graph output named `name` (an Identity when the names differ). */
  output(name: string, value: string, elem: ElemType, dims: Dim[]): void {
    if (value !== name) this.node('Identity', [value], {}, { outputs: [name] });
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** An initializer (weights, tables); returns its name. */
  init(name: string, elem: ElemType, dims: number[], data: InitData): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new RangeError(`ONNX initializer ${name}: ${data.length} values for shape [${dims.join(', ')}]`);
    const nm = this.fresh(name);
    this.inits.push({ name: nm, dataType: elem, dims, rawData: bytesOf(data) });
    return nm;
  }

  /** A small constant initializer, shared between uses of the same value. */
  const(elem: ElemType, dims: number[], values: number[]): string {
    const key = `${elem}:${dims.join(',')}:${values.join(',')}`;
    const hit = this.consts.get(key);
    if (hit) return hit;
    const data = elem === DT.INT64 ? BigInt64Array.from(values.map(BigInt))
      : elem === DT.INT32 ? Int32Array.from(values) : elem === DT.FLOAT ? Float32Array.from(values)
        : elem === DT.BOOL || elem === DT.UINT8 ? Uint8Array.from(values) : Int8Array.from(values);
    const name = this.init(`const_${this.consts.size}`, elem, dims, data);
    this.consts.set(key, name);
    return name;
  }
  i64(...v: number[]): string { return this.const(DT.INT64, [v.length], v); }
  scalarI64(v: number): string { return this.const(DT.INT64, [], [v]); }
  scalarF(v: number): string { return this.const(DT.FLOAT, [], [v]); }

  /** A node; returns its output names (fresh names from the op unless given). '' = absent input. */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, o: { outputs?: string[] | number; domain?: string; name?: string } = {}): string[] {
    const outs = Array.isArray(o.outputs) ? o.outputs.map((n) => { this.names.add(n); return n; })
      : Array.from({ length: o.outputs ?? 1 }, () => this.fresh(`${o.name ?? op}_out`));
    if (o.domain === MS_DOMAIN) this.usesMs = true;
    this.nodes.push({
      opType: op, input: inputs, output: outs, name: this.fresh(`${o.name ?? op}`), domain: o.domain ?? '',
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }
  /** A single-output node. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, o: { domain?: string; name?: string } = {}): string {
    return this.node(op, inputs, attrs, o)[0];
  }

  /** Total bytes of the initializers (protobuf caps a whole model at 2 GiB: beyond it, external data). */
  initializerBytes(): number {
    return this.inits.reduce((n, t) => n + t.rawData!.byteLength, 0);
  }

  /** Moves every initializer of at least `min` bytes out of the model into one data file named
   *  `location` (ONNX external data: location/offset/length, offsets aligned to 64 bytes, read
   *  relative to the .onnx file's directory); returns that file's chunks in order. */
  externalize(location: string, min = 1024): Uint8Array[] {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const t of this.inits) {
      const raw = t.rawData!;
      if (raw.byteLength < min) continue;
      const pad = (64 - (offset % 64)) % 64;
      if (pad) chunks.push(new Uint8Array(pad));
      offset += pad;
      chunks.push(raw);
      t.rawData = undefined;
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.byteLength) }];
      offset += raw.byteLength;
    }
    return chunks;
  }

  /** The ModelProto bytes. */
  encode(o: { producer?: string; doc?: string; graphName?: string } = {}): Uint8Array {
    const opsetImport: OnnxNs.IOperatorSetIdProto[] = [{ domain: '', version: OPSET }];
    if (this.usesMs) opsetImport.push({ domain: MS_DOMAIN, version: 1 });
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION, producerName: o.producer ?? 'kdqat', producerVersion: '0.1.0', docString: o.doc ?? '',
      opsetImport,
      graph: { name: o.graphName ?? 'kdqat', node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Parses ModelProto bytes (tests and tools read back what was written). */
export function decodeModel(bytes: Uint8Array): OnnxNs.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** An initializer of a decoded model as a typed array of its element type. */
export function initializerData(m: OnnxNs.ModelProto, name: string): { dims: number[]; elem: number; data: InitData } {
  const t = m.graph!.initializer!.find((i) => i.name === name);
  if (!t) throw new Error(`ONNX model has no initializer "${name}"`);
  const raw = t.rawData!;
  const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const data = t.dataType === DT.FLOAT ? new Float32Array(buf) : t.dataType === DT.INT8 ? new Int8Array(buf)
    : t.dataType === DT.INT64 ? new BigInt64Array(buf) : t.dataType === DT.INT32 ? new Int32Array(buf)
      : t.dataType === DT.FLOAT16 ? new Uint16Array(buf) : new Uint8Array(buf);
  return { dims: t.dims!.map(Number), elem: t.dataType!, data };
}
