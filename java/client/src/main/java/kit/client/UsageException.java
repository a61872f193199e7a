package kit.client;

/** Bad input from the user: one line on stderr, exit 2. */
public final class UsageException extends Exception {
  private static final long serialVersionUID = 1L;

  public UsageException(String message) {
    super(message);
  }

  /** The user's text as a message shows it: in single quotes, as the Python client's do. */
  public static String quote(String text) {
    return "'" + text + "'";
  }
}
