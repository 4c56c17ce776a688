/** A small dependency-free SVG line chart: latency (y) against tenant count (x). */
export type Series = { label: string; color: string; points: { x: number; y: number }[] };

export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 720,
    H = 360,
    L = 64,
    R = 150,
    T = 40,
    B = 48;
  const all = series.flatMap((s) => s.points);
  const maxX = Math.max(...all.map((p) => p.x), 1);
  const maxY = niceCeil(Math.max(...all.map((p) => p.y), 1));
  const x = (v: number) => L + (v / maxX) * (W - L - R);
  const y = (v: number) => H - B - (v / maxY) * (H - T - B);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * maxY);
  const xticks = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * maxX));
  const esc = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - R / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...ticks.map(
      (v) =>
        `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${round(v)}</text>`,
    ),
    ...xticks.map((v) => `<text x="${x(v)}" y="${H - B + 16}" text-anchor="middle">${v}</text>`),
    `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    ...series.map((s, i) =>
      [
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ')}"/>`,
        `<line x1="${W - R + 12}" x2="${W - R + 32}" y1="${T + 14 + i * 20}" y2="${T + 14 + i * 20}" stroke="${s.color}" stroke-width="3"/>`,
        `<text x="${W - R + 38}" y="${T + 18 + i * 20}">${esc(s.label)}</text>`,
      ].join(''),
    ),
    '</svg>',
  ].join('\n');
}

function niceCeil(v: number): number {
  const step = 10 ** Math.floor(Math.log10(v));
  return Math.ceil(v / step) * step;
}

const round = (v: number) => (v >= 10 ? Math.round(v) : Math.round(v * 10) / 10);
