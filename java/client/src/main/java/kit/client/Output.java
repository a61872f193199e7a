package kit.client;

import com.google.protobuf.Message;
import com.google.protobuf.TextFormat;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Prints each message on one line of protobuf text format, written as UTF-8 whatever the locale,
 * flushed line by line. The words are protobuf-java's; the Python client's differ in places (its
 * floats, its escapes of control characters) but parse to the same message (the Java clients' tests
 * compare them parsed, tests/java/text_lines.py).
 */
public final class Output {
  static final PrintStream OUT =
      new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
  static final PrintStream ERR =
      new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);

  /**
   * Text stays readable: {@code "héllo"}, not the default's {@code "h\303\251llo"}, as the Python
   * client prints it. protobuf-java 3.21 then escapes only quotes, backslashes and newlines, so
   * {@link #controlsEscaped} escapes the other control characters: a server's string must not move
   * the cursor, recolour the terminal or start a line of its own.
   */
  private static final TextFormat.Printer TEXT = TextFormat.printer().escapingNonAscii(false);

  private Output() {}

  /** The message on one line. */
  public static void show(Message message) {
    show(message, "");
  }

  /**
   * The message on one line, then {@code comment}: a text format comment of the service's own
   * ({@code # ...}), as route guide's client shows its points in degrees, or nothing.
   */
  public static void show(Message message, String comment) {
    OUT.println(controlsEscaped(TEXT.shortDebugString(message)) + comment);
    OUT.flush();
  }

  /**
   * C0 and C1 control characters and DEL as text format's octal escapes of their UTF-8 bytes. In a
   * line of text format they occur only inside string literals, where the escape is valid.
   */
  static String controlsEscaped(String line) {
    StringBuilder out = new StringBuilder(line.length());
    line.codePoints()
        .forEach(
            c -> {
              if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
                for (byte b : Character.toString(c).getBytes(StandardCharsets.UTF_8)) {
                  out.append(String.format("\\%03o", b & 0xff));
                }
              } else {
                out.appendCodePoint(c);
              }
            });
    return out.toString();
  }

  /** A line on stderr, prefixed like the Python client's: {@code client: ...}. */
  static void error(String line) {
    ERR.println("client: " + line);
    ERR.flush();
  }
}
