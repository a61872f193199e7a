package kit.client;

/** Bad input from the user: one line on stderr, exit 2. */
final class UsageException extends Exception {
  private static final long serialVersionUID = 1L;

  UsageException(String message) {
    super(message);
  }

  /** The user's text as a message shows it: in single quotes, as the Python client's do. */
  static String quote(String text) {
    return "'" + text + "'";
  }
}
