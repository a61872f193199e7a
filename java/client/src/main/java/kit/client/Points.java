package kit.client;

import com.example.routeguide.v1.Point;
import com.example.routeguide.v1.RouteNote;

/** The command line's points ({@code LAT,LON}, degrees x 10^7) and notes ({@code LAT,LON:message}). */
final class Points {
  private Points() {}

  /** {@code LAT,LON} in integers, as RouteGuide counts them. */
  static Point point(String text) throws UsageException {
    String[] parts = text.split(",", -1);
    if (parts.length == 2) {
      try {
        return Point.newBuilder()
            .setLatitude(Integer.parseInt(parts[0].strip()))
            .setLongitude(Integer.parseInt(parts[1].strip()))
            .build();
      } catch (NumberFormatException e) {
        // falls through to the one message below
      }
    }
    throw new UsageException("a point is LAT,LON in integers, got " + Flags.repr(text));
  }

  /** {@code LAT,LON:message}; the message is everything after the first colon. */
  static RouteNote note(String text) throws UsageException {
    int colon = text.indexOf(':');
    if (colon >= 0) {
      try {
        return RouteNote.newBuilder()
            .setLocation(point(text.substring(0, colon)))
            .setMessage(text.substring(colon + 1))
            .build();
      } catch (UsageException e) {
        // falls through to the note's own message
      }
    }
    throw new UsageException("a note is LAT,LON:message, got " + Flags.repr(text));
  }
}
