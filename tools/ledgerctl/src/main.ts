#!/usr/bin/env node
// ledgerctl: the operators' and auditors' command-line tool (see tools/ledgerctl/README.md).
import { run } from './cli';
import { processIo } from './io';

run(process.argv.slice(2), processIo()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ledgerctl: internal error: ${String(err)}\n`);
    process.exitCode = 70;
  },
);
