// Parquet files (tables.ts), read with hyparquet and hyparquet-compressors (snappy, gzip, zstd,
// brotli, lz4).
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { TableFormat } from './tables.js';

const arrayBuffer = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

export const parquetFormat: TableFormat = {
  name: 'Parquet',
  test: (f) => /\.parquet$/i.test(f),
  columns: (bytes) => parquetSchema(parquetMetadata(arrayBuffer(bytes))).children.map((c) => c.element.name),
  rows: async (bytes, columns) => await parquetReadObjects({ file: arrayBuffer(bytes), columns, compressors }) as Record<string, unknown>[],
};
