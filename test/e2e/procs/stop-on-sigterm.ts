// The service child processes of the tests, the soak and the bench stop the same way: SIGTERM stops the service
// (steps finish, the store closes) and exits 0, or 1 with the reason on stderr.
export function stopOnSigterm(service: { stop(): Promise<void> }): void {
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
