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
 * floats, its escapes of control characters) but parse to the same message
 * (//tests/java:client_e2e_test compares them parsed).
 */
final class Output {
  static final PrintStream OUT =
      new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
  static final PrintStream ERR =
      new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);

  /**
   * Text stays readable: {@code "héllo"}, not the default's {@code "h\303\251llo"}, as the Python
   * client prints it. The cost, in protobuf-java 3.21: only quotes, backslashes and newlines are
   * escaped, so other control characters in a string (a tab, {@code \r}, an escape sequence) reach
   * the terminal as they are; the line still parses, and a newline never splits it.
   */
  private static final TextFormat.Printer TEXT = TextFormat.printer().escapingNonAscii(false);

  private Output() {}

  /** The message on one line, its points also in degrees (see {@link Points#textComment}). */
  static void show(Message message) {
    OUT.println(TEXT.shortDebugString(message) + Points.textComment(message));
    OUT.flush();
  }

  /** A line on stderr, prefixed like the Python client's: {@code client: ...}. */
  static void error(String line) {
    ERR.println("client: " + line);
    ERR.flush();
  }
}
