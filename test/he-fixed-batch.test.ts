import { describeFixedBatch } from './he-fixtures.ts';

// HE-MAN's fixed-batch MNIST demo shape at 10 × 10 (test/slow/he-fixed-batch-mnist.test.ts runs
// the same suite at 28 × 28).
describeFixedBatch(10);
