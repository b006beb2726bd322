/**
 * `npm run dashboards` writes every generated file under dashboards/ (the Grafana dashboards,
 * the Prometheus scrape configurations, the Grafana provisioning files);
 * `npm run dashboards -- --check` writes nothing and exits 1 naming each file that is out of
 * date, for CI and for a reviewer who wonders whether the JSON matches the code.
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DASHBOARDS_DIR, generatedFiles } from './generate.ts';

function main(args: readonly string[]): number {
  const unknown = args.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`dashboards: unknown argument ${unknown.join(' ')}; the only option is --check\n`);
    return 2;
  }
  const check = args.includes('--check');
  const stale: string[] = [];
  for (const file of generatedFiles()) {
    const target = path.join(DASHBOARDS_DIR, file.path);
    const shown = path.relative(process.cwd(), target);
    const current = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
    if (current === file.content) continue;
    if (check) {
      stale.push(shown);
      continue;
    }
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    process.stdout.write(`wrote ${shown}\n`);
  }
  if (check && stale.length > 0) {
    for (const file of stale) {
      process.stderr.write(`out of date: ${file} (run npm run dashboards, then commit it)\n`);
    }
    return 1;
  }
  if (check) process.stdout.write('dashboards: every generated file is up to date\n');
  return 0;
}

process.exitCode = main(process.argv.slice(2));
