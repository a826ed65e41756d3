// Child-process entry for the robustness tests: the service with the issue-13 defences off
// (unsafeNaive), so a test can show an attack killing it without risking the test process.
import { startService } from '../../src/service/index.ts';

const [dataDir] = process.argv.slice(2);
const svc = await startService({ dataDir: dataDir!, port: 0, unsafeNaive: true, maxBodyBytes: 64 << 20 });
process.stdout.write(`${svc.url}\n`);
