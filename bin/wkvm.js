#!/usr/bin/env node
import { main } from '../dist/host/cli/main.js';

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    process.stderr.write(`wkvm: internal error: ${error?.stack ?? error}\n`);
    process.exitCode = 70;
  },
);
