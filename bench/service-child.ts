// Child-process entry of bench/robustness.ts and the robustness tests: one service on loopback,
// protected or the internal naive baseline (`--naive`), so an attack that kills or swells the
// process is measured in its own process (peak RSS from /proc) without harming the caller.
import { startService } from '../src/service/index.ts';

const args = process.argv.slice(2);
const dataDir = args.find((a) => !a.startsWith('--'))!;
const svc = await startService({ dataDir, port: 0, unsafeNaive: args.includes('--naive'), maxBodyBytes: 64 << 20 });
process.stdout.write(`${svc.url}\n`);
