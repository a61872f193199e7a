package kit.client;

/**
 * A subcommand in two steps, as the Python client runs them: its arguments are checked first
 * (bad input is exit 2 before any channel exists), then the returned call runs on the channel.
 */
interface Command {
  Call parse(Flags.Parsed args) throws UsageException;

  interface Call {
    /** Throws StatusRuntimeException when an RPC fails. */
    void run(Calls calls) throws UsageException, InterruptedException;
  }
}
