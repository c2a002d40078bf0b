// What the console's scripts find on the page besides their own modules, for the type
// check only (never served): the vendored uPlot, loaded by a classic <script> before
// the modules, is a global; charts keep their cleanup on their container element.

interface Window {
  /** uPlot from /assets/vendor/uPlot.iife.min.js (the npm package `uplot` at the same version). */
  uPlot: typeof import('uplot');
}

interface HTMLElement {
  /** Set by `dailyChart` on the container it draws in: removes the chart and its observer. */
  chartCleanup?: (() => void) | null;
}

interface JSON {
  /**
   * `JSON.parse` with the reviver's third argument (JSON.parse source text access, in
   * the browsers the console supports): `context.source` is a primitive's JSON text,
   * so `parseJson` can keep credit amounts a double cannot hold exactly.
   */
  parse(text: string, reviver: (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown): unknown;
}
