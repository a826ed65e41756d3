import type { AttributeValue, Declared, Graph, GraphNode, Tensor } from './onnx.ts';
import { serializeOnnx } from './onnx.ts';

/**
 * A small ONNX graph builder: tests and the training script make per-operator models with it and
 * write them as ModelProto bytes that onnxruntime also loads.
 *
 * @example
 * ```ts
 * const b = new GraphBuilder(13);
 * const x = b.input('x', [null, 4]);
 * b.output(b.node('Gemm', [x, b.init('w', { dims: [4, 2], data: new Float64Array(8) })], { transB: 0 }));
 * const bytes = b.toBytes();
 * ```
 */
export class GraphBuilder {
  readonly #opset: number;
  readonly #inputs: { name: string; dims: (number | null)[] }[] = [];
  readonly #outputs: string[] = [];
  readonly #inits = new Map<string, Tensor>();
  readonly #nodes: GraphNode[] = [];
  readonly #declared = new Map<string, Declared>();
  #next = 0;

  constructor(opset = 13) {
    this.#opset = opset;
  }
  /** Declares a graph input; null dims are symbolic. */
  input(name: string, dims: (number | null)[]): string {
    this.#inputs.push({ name, dims });
    return name;
  }
  /** Adds an initializer. */
  init(name: string, t: Tensor): string {
    this.#inits.set(name, t);
    return name;
  }
  /** Adds a node and returns its (first) output name. */
  node(op: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, name?: string): string {
    const out = `t${this.#next++}`;
    this.#nodes.push({ op, name: name ?? `${op}_${this.#nodes.length}`, inputs, outputs: [out], attrs });
    return out;
  }
  /** Marks a value as a graph output, optionally with its declared shape. */
  output(name: string, dims?: (number | null)[]): void {
    this.#outputs.push(name);
    if (dims !== undefined) this.declare(name, dims);
  }
  /** Declares a value's shape (value_info, as an exporter's shape inference writes it); elemType 1 float, 7 int64. */
  declare(name: string, dims: (number | null)[], elemType = 1): void {
    this.#declared.set(name, { dims, elemType });
  }
  /** The IR graph. */
  graph(): Graph {
    return { opset: this.#opset, inputs: this.#inputs, outputs: this.#outputs, initializers: this.#inits, nodes: this.#nodes, declared: this.#declared };
  }
  /** ModelProto bytes. */
  toBytes(): Uint8Array {
    return serializeOnnx(this.graph());
  }
}
