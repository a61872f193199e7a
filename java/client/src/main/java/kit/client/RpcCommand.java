package kit.client;

import java.util.concurrent.Callable;
import picocli.CommandLine.ParentCommand;

/**
 * A subcommand that makes calls, in two steps as the Python client runs them: picocli converts and
 * checks its arguments first (bad input is exit 2 before any channel exists), then {@link #run}
 * makes its calls on the channel {@link Main} opens.
 */
public abstract class RpcCommand implements Callable<Integer> {
  @ParentCommand Main main;

  /** Throws StatusRuntimeException when an RPC fails. */
  protected abstract void run(Calls calls) throws UsageException, InterruptedException;

  @Override
  public Integer call() {
    return main.connectAndRun(this);
  }
}
