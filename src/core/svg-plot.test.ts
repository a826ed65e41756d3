import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codeOf } from '../../test/helpers.ts';
import { escapeXml, lineChartSvg, stackedChartsSvg } from './svg-plot.ts';
import type { ChartOptions } from './svg-plot.ts';

/**
 * A small well-formedness check: tags nest and close, attribute values are quoted and free of
 * `<`, text holds no raw `<` and every `&` starts an entity, and there is one root `<svg>`.
 */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let roots = 0;
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf('<', i);
    const text = svg.slice(i, lt < 0 ? svg.length : lt);
    expect(text).not.toMatch(/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    expect(m, `malformed tag at ${lt}: ${svg.slice(lt, lt + 60)}`).not.toBeNull();
    const [whole, close, name, attributes, selfClose] = m!;
    expect(attributes!).not.toMatch(/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i);
    if (close === '/') expect(stack.pop()).toBe(name);
    else if (selfClose !== '/') {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
    i = lt + whole!.length;
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
}

const count = (svg: string, needle: string): number => svg.split(needle).length - 1;

const lossChart: ChartOptions = {
  title: 'Test loss',
  xLabel: 'round',
  series: [
    { name: 'fedavg', yLabel: 'log loss', points: [[1, 0.27], [2, 0.21], [3, 0.18], [4, 0.16]] },
    { name: 'centralized', yLabel: 'log loss', points: [[1, 0.2], [2, 0.15], [3, 0.14], [4, 0.13]] },
  ],
};

describe('lineChartSvg', () => {
  it('renders a standalone SVG with one polyline per series, a legend and labelled axes', () => {
    const svg = lineChartSvg(lossChart);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    assertWellFormed(svg);
    expect(count(svg, '<polyline')).toBe(2);
    for (const text of ['Test loss', 'round', 'log loss', 'fedavg', 'centralized']) expect(svg).toContain(`>${text}</text>`);
    const colors = [...svg.matchAll(/<polyline[^>]*stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
    expect(new Set(colors).size).toBe(2);
  });

  it('escapes markup in every caller string', () => {
    const svg = lineChartSvg({
      title: 'a < b & "c"',
      xLabel: '<script>alert(1)</script>',
      series: [{ name: "it's & <it>", yLabel: 'y > 0', points: [[0, 1], [1, 2]] }],
    });
    assertWellFormed(svg);
    expect(svg).not.toContain('<script');
    expect(svg).toContain('a &lt; b &amp; &quot;c&quot;');
    expect(svg).toContain('it&apos;s &amp; &lt;it&gt;');
  });

  it('skips NaN and infinite points, draws a lone point, and tolerates empty series', () => {
    const svg = lineChartSvg({
      title: 'mixed',
      xLabel: 'x',
      series: [
        { name: 'gappy', points: [[1, 0.5], [2, Number.NaN], [Number.NaN, 1], [3, Number.POSITIVE_INFINITY], [4, 0.7]] },
        { name: 'single', points: [[2, 0.6]] },
        { name: 'empty', points: [] },
      ],
    });
    assertWellFormed(svg);
    expect(svg).not.toMatch(/NaN|Infinity/);
    expect(count(svg, '<polyline')).toBe(2);
    // circle markers belong to the first series: its 2 finite points and its legend entry
    expect(count(svg, '<circle')).toBe(3);
    const gappy = /<polyline[^>]*points="([^"]*)"/.exec(svg)![1]!;
    expect(gappy.split(' ')).toHaveLength(2);
    // a series with no data gets no legend entry
    expect(svg).not.toContain('>empty</text>');
    expect(svg).toContain('>single</text>');
  });

  it('gives every series its own dash pattern and marker, and marks events', () => {
    const svg = lineChartSvg({
      title: 't',
      xLabel: 'round',
      series: [
        { name: 'a', points: [[1, 1], [2, 2], [3, 3]] },
        { name: 'b', points: [[1, 1], [2, 2], [3, 3]] },
        { name: 'c', points: [[1, 1], [2, 2], [3, 3]] },
      ],
      marks: [{ x: 2, label: 'dropout: 5' }, { x: 99, label: 'outside' }],
    });
    assertWellFormed(svg);
    const dashes = [...svg.matchAll(/<polyline[^>]*>/g)].map((m) => /stroke-dasharray="([^"]*)"/.exec(m[0])?.[1] ?? 'solid');
    expect(new Set(dashes).size).toBe(3);
    expect(count(svg, '<circle')).toBe(4);
    expect(count(svg, '<rect x=')).toBeGreaterThanOrEqual(4);
    expect(svg).toContain('>dropout: 5</text>');
    expect(svg).not.toContain('outside');
  });

  it('renders a chart with only one point or no data at all', () => {
    const single = lineChartSvg({ title: 'one', xLabel: 'round', series: [{ name: 'acc', points: [[1, 0.95]] }] });
    assertWellFormed(single);
    expect(single).not.toMatch(/NaN|Infinity/);
    expect(count(single, '<polyline')).toBe(1);

    for (const series of [[], [{ name: 'nothing', points: [[Number.NaN, Number.NaN]] as const }]]) {
      const empty = lineChartSvg({ title: 'none', xLabel: 'round', series });
      assertWellFormed(empty);
      expect(count(empty, '<polyline')).toBe(0);
      expect(empty).toContain('>no data</text>');
    }
  });

  it('stays well formed for arbitrary text and any finite points', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.array(fc.tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.double({ noNaN: true, noDefaultInfinity: true })), { maxLength: 20 }),
        (name, points) => {
          const svg = lineChartSvg({ title: name, xLabel: name, series: [{ name, yLabel: name, points }] });
          assertWellFormed(svg);
          expect(svg).not.toMatch(/NaN|Infinity/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('honours the requested size and rejects nonsense sizes', () => {
    expect(lineChartSvg({ ...lossChart, width: 800, height: 400 })).toMatch(/^<svg[^>]* width="800" height="400"/);
    expect(codeOf(() => lineChartSvg({ ...lossChart, width: 0 }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
    expect(codeOf(() => lineChartSvg({ ...lossChart, height: Number.NaN }))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('stackedChartsSvg', () => {
  it('stacks charts vertically in one document', () => {
    const accuracyChart: ChartOptions = { title: 'Test accuracy', xLabel: 'round', series: [{ name: 'fedavg', points: [[1, 0.95], [2, 0.96]] }], width: 500, height: 200 };
    const svg = stackedChartsSvg([lossChart, accuracyChart]);
    assertWellFormed(svg);
    expect(count(svg, '<svg')).toBe(1);
    expect(count(svg, '<polyline')).toBe(3);
    expect(svg).toMatch(/^<svg[^>]* width="640" height="520"/);
    expect(svg).toContain('<g transform="translate(0 320)">');
    expect(codeOf(() => stackedChartsSvg([]))).toBe('CIPHERML_E_INVALID_ARGUMENT');
  });
});

describe('escapeXml', () => {
  it('escapes markup and replaces characters XML forbids', () => {
    expect(escapeXml('loss < 0.1 & "ok"')).toBe('loss &lt; 0.1 &amp; &quot;ok&quot;');
    expect(escapeXml('a\u0000b\u0007c\td\ue000')).toBe('a\ufffdb\ufffdc\td\ue000');
    expect(escapeXml('\ud800x')).toBe('\ufffdx');
    expect(escapeXml('😀')).toBe('😀');
  });
});
