import { toBinary } from '@bufbuild/protobuf';
import type { Interceptor } from '@connectrpc/connect';
import { f64ToLe } from '../src/fl/protocol.ts';
import type { FlClient } from '../src/fl/worker.ts';

/** Wraps a client to record every parameter vector it produces locally (what must stay private). */
export function recording(client: FlClient, sink: Float64Array[]): FlClient {
  return {
    ...client,
    fit: async (p, c) => {
      const out = await client.fit(p, c);
      for (const t of out.parameters) sink.push(t.values.slice());
      return out;
    },
  };
}

/** Records the wire bytes of every request the server receives. */
export function recorder(sink: Uint8Array[]): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) sink.push(toBinary(req.method.input, req.message));
    return next(req);
  };
}

/** True when the 8 little-endian bytes of some nonzero value in `values` occur in `haystack`. */
export function leaks(values: readonly Float64Array[], haystack: readonly Uint8Array[]): boolean {
  const all = Buffer.concat(haystack.map((h) => Buffer.from(h)));
  return values.some((v) => Array.from(v).some((x) => x !== 0 && all.includes(Buffer.from(f64ToLe(Float64Array.of(x))))));
}
