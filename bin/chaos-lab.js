#!/usr/bin/env node
// The `chaos-lab` command. The lab is TypeScript run by tsx: register its loader, then hand
// over to lab/cli.ts (resolved from this file, so any working directory works).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../lab/cli.ts');
const code = await main(process.argv.slice(2));
// Pooled keep-alive sockets and the like must not hold a finished command open.
process.exit(code);
