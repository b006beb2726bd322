/**
 * Writes the sample report (the fixture in `__fixtures__/sample-result.ts`) to a file, to look at the
 * report without running an experiment: `node --import tsx lab/report/render-sample.ts /tmp/sample-report.html`
 * (`--aborted` renders the run stopped during its fault phase instead).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { abortedResult, sampleResult } from './__fixtures__/sample-result.ts';
import { renderReport } from './report.ts';

const args = process.argv.slice(2);
const aborted = args.includes('--aborted');
const target = args.find((a) => !a.startsWith('--'));
if (target === undefined) {
  process.stderr.write('usage: node --import tsx lab/report/render-sample.ts <out.html> [--aborted]\n');
  process.exit(2);
}
const file = path.resolve(target);
writeFileSync(file, renderReport(aborted ? abortedResult : sampleResult));
process.stdout.write(`${file}\n`);
