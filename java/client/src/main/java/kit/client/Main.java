package kit.client;

import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * Command-line client for the kit's services, the Java twin of python/client: {@code client [FLAGS]
 * SUBCOMMAND [FLAGS] ...}. TLS to port 443 with the JVM's trust roots by default, --insecure for a
 * local server (plaintext h2c); one channel serves every call. The kit's own subcommand is {@code
 * health}; a service's client binary adds its own with {@link #main(String[], Consumer)}, as the
 * samples' do (python/services/ping/java, python/services/route_guide/java).
 *
 * <p>The global flags are inherited by every subcommand, so they go before or after it (the last
 * one given wins). Arguments picocli does not know as flags are values: a southern or western point
 * ({@code -33.8688,151.2093}) needs no {@code --}.
 *
 * <p>Exit codes: 0 OK; 1 the call failed ({@code client: CODE: detail} on stderr); 2 bad input (one
 * line on stderr). No stack trace for either.
 */
@Command(
    name = "client",
    synopsisSubcommandLabel = "SUBCOMMAND",
    description = {
      "Command-line client for the kit's gRPC services. Exit codes: 0 OK, 1 the call failed"
          + " (status name and detail on stderr), 2 bad input (one line on stderr)."
    },
    subcommands = {HealthCommand.class})
public final class Main implements Callable<Integer> {
  static final int EXIT_OK = 0;
  static final int EXIT_RPC_FAILED = 1;
  static final int EXIT_USAGE = 2;

  /** Held so the settings stay: java.util.logging keeps only weak references to loggers. */
  private static final List<Logger> QUIET =
      List.of(Logger.getLogger("io.grpc"), Logger.getLogger("io.netty"));

  @Spec CommandSpec spec;

  @Option(
      names = "--server",
      paramLabel = "HOST[:PORT]",
      scope = ScopeType.INHERIT,
      description = "default localhost:8080; port 443 if omitted")
  String server = "localhost:8080";

  @Option(
      names = "--insecure",
      scope = ScopeType.INHERIT,
      description = "plaintext h2c (local servers)")
  boolean insecure;

  @Option(
      names = "--ca_cert",
      paramLabel = "FILE",
      scope = ScopeType.INHERIT,
      description = "PEM file of the CA to trust instead of the system roots")
  String caCert;

  @Option(
      names = "--authority",
      paramLabel = "NAME",
      scope = ScopeType.INHERIT,
      description = ":authority (and TLS name) to use instead of the host")
  String authority;

  @Option(
      names = "--token_file",
      paramLabel = "FILE",
      scope = ScopeType.INHERIT,
      description = "send 'authorization: Bearer <the token in this file>' on every call")
  String tokenFile;

  @Option(
      names = "--noauth",
      scope = ScopeType.INHERIT,
      description = "send no token (the default without --token_file)")
  boolean noauth;

  @Option(
      names = "--timeout",
      paramLabel = "SECONDS",
      scope = ScopeType.INHERIT,
      description = "deadline of each call, in seconds (default 30)")
  double timeoutSeconds = 30;

  @Option(
      names = "--wait_for_ready",
      scope = ScopeType.INHERIT,
      description = "wait out a reconnect (up to the deadline) instead of failing fast")
  boolean waitForReady;

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      scope = ScopeType.INHERIT,
      description = "show this help and exit")
  boolean help;

  private Main() {}

  /** The kit's client: {@code health} only. */
  public static void main(String[] argv) {
    main(argv, client -> {});
  }

  /**
   * A client binary's entry: the kit's client with what {@code extend} adds to it (a service's
   * subcommands, with {@link CommandLine#addSubcommand(Object)}, and the converters of their
   * arguments' types, made with {@link #converter}).
   */
  public static void main(String[] argv, Consumer<CommandLine> extend) {
    // Netty would otherwise reach for sun.misc.Unsafe, which JDK 24+ reports on stderr; a
    // command-line client gains nothing from it. Set before any Netty class loads.
    System.setProperty("io.netty.noUnsafe", "true");
    System.exit(run(argv, extend));
  }

  static int run(String[] argv, Consumer<CommandLine> extend) {
    // gRPC's and Netty's own log lines (each retry, each failed handshake) would bury the one
    // line this client prints per error, as GRPC_VERBOSITY=ERROR does for the Python client.
    QUIET.forEach(logger -> logger.setLevel(Level.SEVERE));
    return commandLine(extend).execute(argv);
  }

  static CommandLine commandLine(Consumer<CommandLine> extend) {
    CommandLine client = new CommandLine(new Main());
    // First: picocli applies the settings below only to the subcommands it already has.
    extend.accept(client);
    return client
        // Unknown dashed arguments are values: negative points need no `--`. A misspelled flag
        // still fails, as an argument too many or as a value that is no point.
        .setUnmatchedOptionsArePositionalParams(true)
        // As argparse: a flag given twice takes the last value, and `@name` is a value, not a
        // file of arguments to read.
        .setOverwrittenOptionsAllowed(true)
        .setExpandAtFiles(false)
        .setOut(new PrintWriter(Output.OUT, true))
        .setParameterExceptionHandler(
            (error, args) -> {
              Output.error(error.getMessage().replaceAll("\\s*\\R\\s*", " ") + " (see --help)");
              return EXIT_USAGE;
            })
        .setExecutionExceptionHandler(
            (error, commandLine, parsed) -> {
              // A bug, not the user's input nor the server's answer: one line still, and exit 1.
              Output.error("internal error: " + error);
              return EXIT_RPC_FAILED;
            });
  }

  /** Without a subcommand there is nothing to call. */
  @Override
  public Integer call() {
    throw new ParameterException(spec.commandLine(), "a subcommand is required");
  }

  /** A parser of the client's own, its bad input reported as picocli reports a bad value. */
  public interface Parser<T> {
    T parse(String text) throws UsageException;
  }

  /** The parser as picocli's converter: its UsageException is bad input, exit 2. */
  public static <T> ITypeConverter<T> converter(Parser<T> parser) {
    return text -> {
      try {
        return parser.parse(text);
      } catch (UsageException e) {
        throw new TypeConversionException(e.getMessage());
      }
    };
  }

  /**
   * Opens the channel the global flags describe and runs one subcommand's call on it: exit 1 when
   * the call fails, 2 when the flags or the input the call reads are bad.
   */
  int connectAndRun(RpcCommand command) {
    ManagedChannel channel;
    Calls calls;
    try {
      if (Double.isNaN(timeoutSeconds)) {
        throw new UsageException("--timeout must be a number of seconds, got NaN");
      }
      Channels.Target target = Channels.target(server);
      if (tokenFile != null && insecure && !target.isLoopback()) {
        // As the Python client: a token travels in clear text only to this machine.
        throw new UsageException(
            "--token_file with --insecure only to a loopback --server: "
                + "the token would cross the network in clear text");
      }
      CallCredentials credentials = tokenFile == null ? null : TokenFileCredentials.load(tokenFile);
      channel = Channels.open(target, insecure, caCert, authority);
      calls = new Calls(channel, credentials, timeoutSeconds, waitForReady);
    } catch (UsageException e) {
      Output.error(e.getMessage());
      return EXIT_USAGE;
    }

    try {
      command.run(calls);
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
   * {@code CODE: detail} on one line. Netty's connection failures say only "io exception" and the
   * channel pipeline; the causes' messages say what went wrong (refused, certificate...).
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
          line.append(line.length() > status.getCode().name().length() + 2 ? ": " : "")
              .append(message);
          last = message;
        }
      }
    }
    // One line, and no server's control character reaches the terminal (Output.controlsEscaped).
    return Output.controlsEscaped(line.toString().replaceAll("\\s*\\R\\s*", " ").strip());
  }
}
