package kit.client;

import io.grpc.CallCredentials;
import io.grpc.Channel;
import io.grpc.stub.AbstractStub;
import java.util.concurrent.TimeUnit;

/**
 * What every call gets: the shared channel, the token if any, a deadline counted from the call's
 * start (a stub is prepared just before its call), wait-for-ready if asked.
 */
public record Calls(
    Channel channel, CallCredentials credentials, double timeoutSeconds, boolean waitForReady) {
  /** The stub with the global --timeout as its deadline. */
  public <S extends AbstractStub<S>> S prepare(S stub) {
    return prepare(stub, timeoutSeconds);
  }

  /** The stub with a deadline this many seconds from now; null or infinite: none. */
  public <S extends AbstractStub<S>> S prepare(S stub, Double seconds) {
    if (seconds != null && !seconds.isInfinite()) {
      // Deadline clamps what is too far away; a negative one has passed already.
      long nanos = (long) Math.max(Math.min(seconds * 1e9, Long.MAX_VALUE / 2.0), -1e18);
      stub = stub.withDeadlineAfter(nanos, TimeUnit.NANOSECONDS);
    }
    if (credentials != null) {
      stub = stub.withCallCredentials(credentials);
    }
    return waitForReady ? stub.withWaitForReady() : stub;
  }
}
