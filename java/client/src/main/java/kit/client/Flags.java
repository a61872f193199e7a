package kit.client;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The command line, parsed by hand as the Python client's argparse parses it: global flags before
 * or after the subcommand (the last one given wins, so after beats before), the subcommand's own
 * flags after it, {@code --flag value} or {@code --flag=value}, {@code --} ending the flags.
 * An argument that starts with a minus and a digit, or a minus, a dot and a digit
 * ({@code -33.8,151.2}, {@code -.5}), is a value, not a flag, so southern and western points need
 * no {@code --}: the Python client's rule (Python 3.14 argparse's own, which it backports).
 */
final class Flags {
  enum Kind { BOOLEAN, STRING, FLOAT, INT }

  record Flag(String name, Kind kind, String metavar, String help) {}

  /** A positional argument; {@code many}: zero or more of them. */
  record Positional(String name, boolean many, String help) {}

  record Subcommand(String name, String help, List<Flag> flags, List<Positional> positionals) {}

  static final double DEFAULT_TIMEOUT_SECONDS = 30;

  /** Python 3.14 argparse's negative-number matcher ({@code \d} there: any decimal digit). */
  private static final Pattern NEGATIVE_NUMBER = Pattern.compile("-\\.?\\p{Nd}");

  static final String POINT_HELP = "LAT,LON in degrees (-33.8688,151.2093; up to 7 decimals) or in"
      + " degrees x 10^7 integers (-338688000,1512093000); integers all within +-180 are refused as"
      + " ambiguous";

  static final List<Flag> GLOBAL = List.of(
      new Flag("server", Kind.STRING, "HOST[:PORT]", "default localhost:8080; port 443 if omitted"),
      new Flag("insecure", Kind.BOOLEAN, null, "plaintext h2c (local servers)"),
      new Flag("ca_cert", Kind.STRING, "FILE", "PEM file of the CA to trust instead of the system roots"),
      new Flag("authority", Kind.STRING, "NAME", ":authority (and TLS name) to use instead of the host"),
      new Flag("token_file", Kind.STRING, "FILE",
          "send 'authorization: Bearer <the token in this file>' on every call"),
      new Flag("noauth", Kind.BOOLEAN, null, "send no token (the default without --token_file)"),
      new Flag("timeout", Kind.FLOAT, "SECONDS", "deadline of each call, in seconds (default 30)"),
      new Flag("wait_for_ready", Kind.BOOLEAN, null,
          "wait out a reconnect (up to the deadline) instead of failing fast"));

  /** Flags of the Python client this one does not have, with why. */
  static final Map<String, String> UNSUPPORTED = Map.of(
      "auth", "the Java client mints no ID token; pass one with --token_file",
      "audience", "the Java client mints no ID token; pass one with --token_file",
      "json", "the Java client prints protobuf text format only (no --json)");

  static final Map<String, Subcommand> SUBCOMMANDS = new LinkedHashMap<>();

  static {
    Flag message = new Flag("message", Kind.STRING, "TEXT", "default ping");
    add(new Subcommand("ping", "PingService.Send: the server answers with a pong.",
        List.of(message), List.of()));
    add(new Subcommand("relay", "PingService.SendUpstream: the server relays to its upstream.",
        List.of(message), List.of()));
    add(new Subcommand("get-feature", "RouteGuide.GetFeature at a point.", List.of(),
        List.of(new Positional("point", false, POINT_HELP))));
    add(new Subcommand("list-features", "RouteGuide.ListFeatures (a stream).", List.of(),
        List.of(new Positional("lo", false, "one corner, LAT,LON"),
            new Positional("hi", false, "the opposite corner, LAT,LON"))));
    add(new Subcommand("record-route", "RouteGuide.RecordRoute: points in, summary out.",
        List.of(new Flag("random_points", Kind.INT, "N", "without points: how many (default 10)")),
        List.of(new Positional("points", true,
            "LAT,LON ... (default: random known features, listed by ListFeatures first)"))));
    add(new Subcommand("chat", "RouteGuide.RouteChat: notes in, earlier notes out.", List.of(),
        List.of(new Positional("notes", true,
            "LAT,LON:message ... (default: the lines of stdin, all read and checked before the"
                + " call starts)"))));
    add(new Subcommand("health", "grpc.health.v1.Health: Check, or Watch.",
        List.of(new Flag("service", Kind.STRING, "NAME", "service name; empty: the whole server"),
            new Flag("watch", Kind.BOOLEAN, null, "stream status changes"),
            new Flag("watch_seconds", Kind.FLOAT, "SECONDS", "with --watch: stop after this long")),
        List.of()));
  }

  private static void add(Subcommand subcommand) {
    SUBCOMMANDS.put(subcommand.name(), subcommand);
  }

  /** What the command line asked for. {@code help} non-null: print it and exit 0. */
  record Parsed(String help, Subcommand subcommand, Map<String, Object> values, List<String> positionals) {
    String string(String name, String fallback) {
      return (String) values.getOrDefault(name, fallback);
    }

    boolean bool(String name) {
      return values.containsKey(name);
    }

    double number(String name, double fallback) {
      return (Double) values.getOrDefault(name, fallback);
    }

    Double numberOrNull(String name) {
      return (Double) values.get(name);
    }

    int integer(String name, int fallback) {
      return (Integer) values.getOrDefault(name, fallback);
    }
  }

  private Flags() {}

  static Parsed parse(String[] args) throws UsageException {
    Subcommand subcommand = null;
    Map<String, Object> values = new HashMap<>();
    List<String> positionals = new ArrayList<>();
    boolean flagsEnded = false;
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (flagsEnded || !looksLikeFlag(arg)) {
        if (subcommand == null) {
          subcommand = SUBCOMMANDS.get(arg);
          if (subcommand == null) {
            throw new UsageException("argument SUBCOMMAND: invalid choice: " + repr(arg)
                + " (choose from " + String.join(", ", SUBCOMMANDS.keySet()) + ")");
          }
        } else {
          positionals.add(arg);
        }
        continue;
      }
      if (arg.equals("--")) {
        flagsEnded = true;
        continue;
      }
      if (arg.equals("-h") || arg.equals("--help")) {
        return new Parsed(subcommand == null ? rootHelp() : help(subcommand), subcommand, values, positionals);
      }
      int equals = arg.indexOf('=');
      String name = arg.substring(arg.startsWith("--") ? 2 : 1, equals < 0 ? arg.length() : equals);
      String inline = equals < 0 ? null : arg.substring(equals + 1);
      Flag flag = find(name, subcommand);
      if (flag == null || !arg.startsWith("--")) {
        if (UNSUPPORTED.containsKey(name) && arg.startsWith("--")) {
          throw new UsageException("--" + name + ": " + UNSUPPORTED.get(name));
        }
        throw new UsageException("unrecognized arguments: " + arg);
      }
      if (flag.kind() == Kind.BOOLEAN) {
        if (inline != null) {
          throw new UsageException("argument --" + name + ": ignored explicit argument " + repr(inline));
        }
        values.put(name, Boolean.TRUE);
        continue;
      }
      String value = inline;
      if (value == null) {
        if (i + 1 >= args.length || looksLikeFlag(args[i + 1])) {
          throw new UsageException("argument --" + name + ": expected one argument");
        }
        value = args[++i];
      }
      values.put(name, convert(flag, value));
    }
    if (subcommand == null) {
      throw new UsageException("the following arguments are required: SUBCOMMAND");
    }
    checkPositionals(subcommand, positionals);
    return new Parsed(null, subcommand, values, positionals);
  }

  private static Flag find(String name, Subcommand subcommand) {
    for (Flag flag : GLOBAL) {
      if (flag.name().equals(name)) {
        return flag;
      }
    }
    if (subcommand != null) {
      for (Flag flag : subcommand.flags()) {
        if (flag.name().equals(name)) {
          return flag;
        }
      }
    }
    return null;
  }

  /** A flag starts with a minus; a lone minus, or a negative number or point, is a value. */
  private static boolean looksLikeFlag(String arg) {
    return arg.length() > 1 && arg.charAt(0) == '-' && !NEGATIVE_NUMBER.matcher(arg).lookingAt();
  }

  private static Object convert(Flag flag, String value) throws UsageException {
    try {
      return switch (flag.kind()) {
        case FLOAT -> {
          double number = Double.parseDouble(value.strip());
          if (Double.isNaN(number)) {
            throw new NumberFormatException();
          }
          yield number;
        }
        case INT -> Integer.parseInt(value.strip());
        default -> value;
      };
    } catch (NumberFormatException e) {
      String type = flag.kind() == Kind.INT ? "int" : "float";
      throw new UsageException("argument --" + flag.name() + ": invalid " + type + " value: " + repr(value));
    }
  }

  private static void checkPositionals(Subcommand subcommand, List<String> positionals) throws UsageException {
    boolean many = subcommand.positionals().stream().anyMatch(Positional::many);
    int wanted = subcommand.positionals().size();
    if (!many && positionals.size() < wanted) {
      List<String> missing = subcommand.positionals().subList(positionals.size(), wanted).stream()
          .map(Positional::name).toList();
      throw new UsageException("the following arguments are required: " + String.join(", ", missing));
    }
    if (!many && positionals.size() > wanted) {
      throw new UsageException("unrecognized arguments: "
          + String.join(" ", positionals.subList(wanted, positionals.size())));
    }
  }

  /** Python's repr() of a string, as argparse quotes values in its messages. */
  static String repr(String text) {
    char quote = text.indexOf('\'') >= 0 && text.indexOf('"') < 0 ? '"' : '\'';
    StringBuilder out = new StringBuilder().append(quote);
    for (char c : text.toCharArray()) {
      switch (c) {
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c == quote) {
            out.append('\\').append(c);
          } else if (c < 32 || c == 127) {
            out.append(String.format("\\x%02x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append(quote).toString();
  }

  static String rootHelp() {
    StringBuilder out = new StringBuilder();
    out.append("usage: client [global flags] SUBCOMMAND [flags] [global flags]\n\n");
    out.append("Command-line client for the kit's gRPC services. Exit codes: 0 OK, 1 the call failed\n");
    out.append("(status name and detail on stderr), 2 bad input (one line on stderr).\n\n");
    out.append("subcommands:\n");
    for (Subcommand subcommand : SUBCOMMANDS.values()) {
      out.append(String.format("  %-15s %s%n", subcommand.name(), subcommand.help()));
    }
    out.append('\n');
    globalHelp(out);
    return out.toString();
  }

  static String help(Subcommand subcommand) {
    StringBuilder out = new StringBuilder();
    out.append("usage: client ").append(subcommand.name());
    for (Flag flag : subcommand.flags()) {
      out.append(" [--").append(flag.name()).append(flag.metavar() == null ? "" : " " + flag.metavar()).append(']');
    }
    for (Positional positional : subcommand.positionals()) {
      out.append(' ').append(positional.many() ? "[" + positional.name() + " ...]" : positional.name());
    }
    out.append(" [global flags]\n\n").append(subcommand.help()).append("\n\n");
    if (!subcommand.positionals().isEmpty()) {
      out.append("positional arguments:\n");
      for (Positional positional : subcommand.positionals()) {
        out.append(String.format("  %-26s %s%n", positional.name(), positional.help()));
      }
      out.append('\n');
    }
    if (!subcommand.flags().isEmpty()) {
      out.append("flags:\n");
      for (Flag flag : subcommand.flags()) {
        out.append(flagLine(flag));
      }
      out.append('\n');
    }
    globalHelp(out);
    return out.toString();
  }

  private static void globalHelp(StringBuilder out) {
    out.append("global flags (before or after SUBCOMMAND):\n");
    out.append(String.format("  %-26s %s%n", "-h, --help", "show this help and exit"));
    for (Flag flag : GLOBAL) {
      out.append(flagLine(flag));
    }
  }

  private static String flagLine(Flag flag) {
    String name = "--" + flag.name() + (flag.metavar() == null ? "" : " " + flag.metavar());
    return String.format("  %-26s %s%n", name, flag.help());
  }
}
