// Typed errors of the benchmark runner: each says what was being measured and why it could not be.

export class BenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The runner was invoked wrongly (unknown subcommand, bad flag value). */
export class BenchUsageError extends BenchError {
  constructor(readonly argument: string, readonly reason: string) {
    super(`${argument}: ${reason}`);
  }
}

/** Something the benchmarks need is missing: the build, a guest program. */
export class BenchSetupError extends BenchError {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
  }
}

/** A guest did not do what the benchmark expects (wrong checksum, unexpected exit, timeout). */
export class BenchGuestError extends BenchError {
  constructor(readonly benchmark: string, readonly reason: string, readonly output = '') {
    super(`${benchmark}: ${reason}${output ? `\n--- guest output ---\n${output.trimEnd()}` : ''}`);
  }
}
