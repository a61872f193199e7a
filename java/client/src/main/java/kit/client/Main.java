package kit.client;

import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Command-line client for the kit's services, the Java twin of python/client:
 * {@code client [FLAGS] SUBCOMMAND [FLAGS] ...}. TLS to port 443 with the JVM's trust roots by
 * default, --insecure for a local server (plaintext h2c); one channel serves every call.
 *
 * <p>Exit codes: 0 OK; 1 the call failed ({@code client: CODE: detail} on stderr); 2 bad input
 * (one line on stderr). No stack trace for either.
 */
public final class Main {
  static final int EXIT_OK = 0;
  static final int EXIT_RPC_FAILED = 1;
  static final int EXIT_USAGE = 2;

  /** Held so the settings stay: java.util.logging keeps only weak references to loggers. */
  private static final List<Logger> QUIET = List.of(Logger.getLogger("io.grpc"), Logger.getLogger("io.netty"));

  private Main() {}

  public static void main(String[] argv) {
    // Netty would otherwise reach for sun.misc.Unsafe, which JDK 24+ reports on stderr; a
    // command-line client gains nothing from it. Set before any Netty class loads.
    System.setProperty("io.netty.noUnsafe", "true");
    int status;
    try {
      status = run(argv);
    } catch (RuntimeException e) {
      // A bug, not the user's input nor the server's answer: one line still, and exit 1.
      Output.error("internal error: " + e);
      status = EXIT_RPC_FAILED;
    }
    System.exit(status);
  }

  static int run(String[] argv) {
    // gRPC's and Netty's own log lines (each retry, each failed handshake) would bury the one
    // line this client prints per error, as GRPC_VERBOSITY=ERROR does for the Python client.
    QUIET.forEach(logger -> logger.setLevel(Level.SEVERE));

    Flags.Parsed args;
    Command.Call call;
    try {
      args = Flags.parse(argv);
      if (args.help() != null) {
        Output.OUT.print(args.help());
        Output.OUT.flush();
        return EXIT_OK;
      }
      call = Commands.BY_NAME.get(args.subcommand().name()).parse(args);
    } catch (UsageException e) {
      Output.error(e.getMessage() + " (see --help)");
      return EXIT_USAGE;
    }

    ManagedChannel channel;
    Calls calls;
    try {
      Channels.Target target = Channels.target(args.string("server", "localhost:8080"));
      String tokenFile = args.string("token_file", null);
      if (tokenFile != null && args.bool("insecure") && !target.isLoopback()) {
        // As the Python client: a token travels in clear text only to this machine.
        throw new UsageException("--token_file with --insecure only to a loopback --server: "
            + "the token would cross the network in clear text");
      }
      CallCredentials credentials = tokenFile == null ? null : TokenFileCredentials.load(tokenFile);
      channel = Channels.open(target, args.bool("insecure"), args.string("ca_cert", null),
          args.string("authority", null));
      calls = new Calls(channel, credentials, args.number("timeout", Flags.DEFAULT_TIMEOUT_SECONDS),
          args.bool("wait_for_ready"));
    } catch (UsageException e) {
      Output.error(e.getMessage());
      return EXIT_USAGE;
    }

    try {
      call.run(calls);
      return EXIT_OK;
    } catch (StatusRuntimeException e) {
      Output.error(describe(e.getStatus()));
      return EXIT_RPC_FAILED;
    } catch (UsageException e) {
      Output.error(e.getMessage());
      return EXIT_USAGE;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 130;
    } finally {
      channel.shutdownNow();
      try {
        channel.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * {@code CODE: detail} on one line. Netty's connection failures say only "io exception" and
   * the channel pipeline; the causes' messages say what went wrong (refused, certificate...).
   */
  static String describe(Status status) {
    String detail = status.getDescription() == null ? "" : status.getDescription();
    if (detail.startsWith("io exception")) {
      detail = "io exception";
    }
    StringBuilder line = new StringBuilder(status.getCode().name()).append(": ").append(detail);
    if (detail.isEmpty() || detail.equals("io exception")) {
      String last = null;
      for (Throwable cause = status.getCause(); cause != null; cause = cause.getCause()) {
        String message = cause.getMessage();
        if (message != null && message.length() > 200) {
          message = message.substring(0, 200) + "...";
        }
        if (cause instanceof javax.net.ssl.SSLException && last == null) {
          line.append(": TLS handshake failed");
          last = "";
        }
        if (message != null && !message.isBlank() && (last == null || !last.contains(message))) {
          line.append(line.length() > status.getCode().name().length() + 2 ? ": " : "").append(message);
          last = message;
        }
      }
    }
    return line.toString().replaceAll("\\s*\\R\\s*", " ").strip();
  }
}
