package kit.client;

import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.util.Iterator;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * grpc.health.v1.Health: Check (--service, empty for the whole server), or with --watch the stream
 * of status changes, for --watch_seconds if given (its deadline, counted once the channel is
 * connected: running out is success).
 */
@Command(name = "health", description = "grpc.health.v1.Health: Check, or Watch.")
final class HealthCommand extends RpcCommand {
  @Option(
      names = "--service",
      paramLabel = "NAME",
      description = "service name; empty: the whole server")
  String service = "";

  @Option(names = "--watch", description = "stream status changes")
  boolean watch;

  @Option(
      names = "--watch_seconds",
      paramLabel = "SECONDS",
      description = "with --watch: stop after this long")
  Double watchSeconds;

  @Override
  protected void run(Calls calls) throws InterruptedException {
    HealthCheckRequest request = HealthCheckRequest.newBuilder().setService(service).build();
    if (!watch) {
      Output.show(calls.prepare(HealthGrpc.newBlockingStub(calls.channel())).check(request));
      return;
    }
    if (watchSeconds != null) {
      // The watch's time counts from a ready connection: a cold JVM on a busy machine took
      // seconds to open its channel, which would eat the whole watch.
      awaitConnected(calls);
    }
    long started = System.nanoTime();
    try {
      Iterator<HealthCheckResponse> statuses =
          calls.prepare(HealthGrpc.newBlockingStub(calls.channel()), watchSeconds).watch(request);
      while (statuses.hasNext()) {
        Output.show(statuses.next());
      }
    } catch (StatusRuntimeException error) {
      // Watching for a while and then stopping is success, not a failure.
      boolean ranOut =
          error.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED
              && (System.nanoTime() - started) / 1e9 >= (watchSeconds == null ? 0 : watchSeconds);
      if (!ranOut) {
        throw error;
      }
    }
  }

  /** Connects the channel, for up to --timeout; a failed attempt leaves the call to report it. */
  private static void awaitConnected(Calls calls) throws InterruptedException {
    if (!(calls.channel() instanceof ManagedChannel channel)) {
      return;
    }
    long deadline = System.nanoTime() + (long) (calls.timeoutSeconds() * 1e9);
    ConnectivityState state = channel.getState(true);
    while (state != ConnectivityState.READY
        && state != ConnectivityState.TRANSIENT_FAILURE
        && System.nanoTime() < deadline) {
      CountDownLatch changed = new CountDownLatch(1);
      channel.notifyWhenStateChanged(state, changed::countDown);
      changed.await(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
      state = channel.getState(true);
    }
  }
}
