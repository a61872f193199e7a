package kit.client;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.util.Iterator;

/**
 * grpc.health.v1.Health: Check (--service, empty for the whole server), or with --watch the
 * stream of status changes, for --watch_seconds if given (its deadline: running out is success).
 */
final class HealthCommand {
  private HealthCommand() {}

  static final Command HEALTH = args -> {
    HealthCheckRequest request =
        HealthCheckRequest.newBuilder().setService(args.string("service", "")).build();
    boolean watch = args.bool("watch");
    Double watchSeconds = args.numberOrNull("watch_seconds");
    return calls -> {
      if (!watch) {
        Output.show(calls.prepare(HealthGrpc.newBlockingStub(calls.channel())).check(request));
        return;
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
        boolean ranOut = error.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED
            && (System.nanoTime() - started) / 1e9 >= (watchSeconds == null ? 0 : watchSeconds);
        if (!ranOut) {
          throw error;
        }
      }
    };
  };
}
