package kit.client;

import com.example.ping.v1.PingServiceGrpc;
import com.example.ping.v1.Request;

/** PingService: {@code ping} (Send) and {@code relay} (SendUpstream), each with --message. */
final class PingCommands {
  private PingCommands() {}

  static final Command PING = args -> {
    Request request = request(args);
    return calls -> Output.show(calls.prepare(PingServiceGrpc.newBlockingStub(calls.channel())).send(request));
  };

  static final Command RELAY = args -> {
    Request request = request(args);
    return calls -> Output.show(
        calls.prepare(PingServiceGrpc.newBlockingStub(calls.channel())).sendUpstream(request));
  };

  private static Request request(Flags.Parsed args) {
    return Request.newBuilder().setMessage(args.string("message", "ping")).build();
  }
}
