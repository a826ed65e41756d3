import { readFileSync } from 'node:fs';
import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { refusal } from '../../test/helpers.ts';
import { protoDecodedCost } from '../core/bounded-proto.ts';
import { CipherMLError } from '../core/errors.ts';
import { ModelProtoSchema } from './gen/onnx/onnx_pb.ts';
import { parseOnnx, serializeOnnx } from './onnx.ts';

// Hostile ONNX files (issue 13): refused with a typed error naming the parameter, before the
// protobuf decoder builds objects in proportion to what the file declares or packs.

const MiB = 1 << 20;
const peakMb = (): number => process.resourceUsage().maxRSS / 1024;
const model = readFileSync(new URL('../../examples/he/mnist_square.onnx', import.meta.url));

/** ModelProto { graph: <graph bytes> }. */
function withGraph(graph: Uint8Array): Uint8Array {
  return new BinaryWriter().tag(7, WireType.LengthDelimited).bytes(graph).finish();
}

describe('parseOnnx against hostile files', () => {
  it('reads the shipped model and round-trips it through the generated types', () => {
    const g = parseOnnx(model, '--onnx-path');
    expect(g.inputs).toEqual([{ name: 'input', dims: [null, 1, 28, 28] }]);
    const again = parseOnnx(serializeOnnx(g));
    expect(again.nodes.map((n) => [n.op, n.attrs])).toEqual(g.nodes.map((n) => [n.op, n.attrs]));
    expect([...again.initializers].map(([k, t]) => [k, t.dims, Array.from(t.data, Math.fround)])).toEqual([...g.initializers].map(([k, t]) => [k, t.dims, Array.from(t.data, Math.fround)]));
    // A real model decodes into about its own size.
    expect(protoDecodedCost(ModelProtoSchema, model, 32)).toBeLessThan(2 * model.length + 64 * 1024);
  });

  it('refuses a file above maxBytes before decoding it', () => {
    const e = refusal(() => parseOnnx(model, '--onnx-path', { maxBytes: 1024 }));
    expect([e.code, e.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--onnx-path']);
  });

  it('refuses 2 million empty nodes (4 MB that a decoder would turn into ~500 MB of objects)', () => {
    const graph = new Uint8Array(4 * MiB);
    for (let i = 0; i < graph.length; i += 2) graph[i] = 0x0a; // field 1 (node), length 0
    const bytes = withGraph(graph);
    expect(protoDecodedCost(ModelProtoSchema, bytes, 32)).toBeGreaterThan(400 * MiB);
    const before = peakMb();
    const e = refusal(() => parseOnnx(bytes, '--onnx-path'));
    expect([e.code, e.param]).toEqual(['CIPHERML_E_INPUT_TOO_LARGE', '--onnx-path']);
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('refuses 4 million packed one-byte int64 dims (a BigInt each)', () => {
    const dims = new Uint8Array(4 * MiB).fill(1);
    const tensor = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(dims).finish();
    const graph = new BinaryWriter().tag(5, WireType.LengthDelimited).bytes(tensor).finish();
    const before = peakMb();
    expect(refusal(() => parseOnnx(withGraph(graph), 'model')).code).toBe('CIPHERML_E_INPUT_TOO_LARGE');
    expect(peakMb() - before).toBeLessThan(64);
  });

  it('refuses a tensor whose dims claim more than its bytes, before allocating', () => {
    const bytes = toBinary(
      ModelProtoSchema,
      create(ModelProtoSchema, {
        graph: { node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], initializer: [{ name: 'w', dims: [1n << 20n, 1n << 20n], dataType: 1, rawData: new Uint8Array(8) }] },
      }),
    );
    const before = peakMb();
    const e = refusal(() => parseOnnx(bytes, '--onnx-path'));
    expect([e.code, e.param]).toEqual(['CIPHERML_E_ONNX_INVALID', '--onnx-path']);
    expect(e.message).toMatch(/tensor w holds 8 bytes/);
    expect(peakMb() - before).toBeLessThan(64);
    const negative = toBinary(ModelProtoSchema, create(ModelProtoSchema, { graph: { node: [{ opType: 'Relu' }], initializer: [{ name: 'w', dims: [-2n], dataType: 1, rawData: new Uint8Array(8) }] } }));
    expect(refusal(() => parseOnnx(negative)).message).toMatch(/declares dimension -2/);
  });

  it('refuses nesting deeper than the recursion limit (subgraphs in attributes) with a typed error', () => {
    let graph: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 2000; i++) {
      const attr = new BinaryWriter().tag(6, WireType.LengthDelimited).bytes(graph).finish(); // AttributeProto.g
      const node = new BinaryWriter().tag(5, WireType.LengthDelimited).bytes(attr).finish(); // NodeProto.attribute
      graph = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(node).finish(); // GraphProto.node
    }
    const e = refusal(() => parseOnnx(withGraph(graph), 'model'));
    expect(e.code).toBe('CIPHERML_E_ONNX_INVALID');
    expect(e.message).toMatch(/recursion depth/);
  });

  it('every truncation and byte flip of a real model parses or gives a typed error', () => {
    fc.assert(
      fc.property(fc.nat(model.length), fc.nat(model.length - 1), fc.integer({ min: 0, max: 255 }), (cut, at, byte) => {
        const flipped = Uint8Array.from(model);
        flipped[at] = byte;
        for (const input of [model.subarray(0, cut), flipped]) {
          try {
            parseOnnx(input, 'model');
          } catch (e) {
            expect(e).toBeInstanceOf(CipherMLError);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
