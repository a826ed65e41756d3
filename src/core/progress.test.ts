import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress, progressMode } from './progress.ts';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  w.isTTY = isTTY;
  w.columns = 100;
  w.text = () => chunks.join('');
  return w;
}

describe('progress', () => {
  it('chooses a bar only for an interactive terminal', () => {
    expect(progressMode({ isTTY: true }, false, {})).toBe('bar');
    expect(progressMode({ isTTY: true }, false, { CI: 'true' })).toBe('lines');
    expect(progressMode({ isTTY: true }, false, { TERM: 'dumb' })).toBe('lines');
    expect(progressMode({ isTTY: false }, false, {})).toBe('lines');
    expect(progressMode({ isTTY: true }, true, {})).toBe('json');
  });

  it('writes plain lines without carriage returns when stderr is not a terminal', async () => {
    const s = sink(false);
    const p = await createProgress({ label: 'inference', total: 5, unit: 'steps', stream: s, lineEveryMs: 0 });
    for (let i = 1; i <= 5; i++) p.update(i, `step ${i}`);
    p.finish();
    expect(s.text()).not.toContain('\r');
    expect(s.text()).toContain('inference: 5/5 steps (100 %)');
    expect(s.text()).toMatch(/steps\/s/);
    expect(s.text()).toMatch(/inference: 1\/5 steps \(20 %\), [\d.]+ steps\/s, ETA /);
  });

  it('throttles plain lines', async () => {
    const s = sink(false);
    const p = await createProgress({ label: 'x', total: 1000, stream: s, lineEveryMs: 60_000 });
    for (let i = 1; i < 1000; i++) p.update(i);
    p.finish();
    // the first update, the last one (at finish) and the "done" line
    expect(s.text().trim().split('\n')).toHaveLength(3);
  });

  it('writes one JSON object per update in --json mode', async () => {
    const s = sink(true);
    const p = await createProgress({ label: 'rounds', total: 0, unit: 'rounds', json: true, stream: s });
    p.update(1, 'round 1', 3);
    p.update(3);
    p.finish();
    const lines = s.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ progress: 'rounds', done: 1, total: 3, detail: 'round 1' });
    expect(lines[2]).toMatchObject({ finished: true, done: 3, total: 3 });
  });

  it('draws a bar with rate and ETA on a terminal', async () => {
    const s = sink(true);
    const p = await createProgress({ label: 'enc', total: 4, unit: 'layers', stream: s, mode: 'bar' });
    p.update(2, 'conv');
    p.finish();
    expect(s.text()).toMatch(/enc \[.*\] 2\/4 layers \| [\d.]+\/s \| ETA/);
  });
});
