import { describeFixedBatch } from '../he-fixtures.ts';

// HE-MAN's fixed-batch MNIST demo shape at MNIST's 28 × 28 (test/he-fixed-batch.test.ts runs the
// same suite at 10 × 10 in the default suite).
describeFixedBatch(28);
