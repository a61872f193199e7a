package com.example.routeguide.client;

import com.example.routeguide.v1.Point;
import com.example.routeguide.v1.RouteNote;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import kit.client.UsageException;

/**
 * Route guide's command line's points ({@code LAT,LON}) and notes ({@code LAT,LON:message}), and
 * points shown in degrees. The rule, the same as ../points.py's with the same messages: a decimal
 * point in either number means degrees (at most 7 decimals); integers only, one beyond +-180, mean
 * degrees x 10^7 (E7, RouteGuide's unit); integers all within +-180 ({@code 40,-74}) could be
 * either and are refused, except {@code 0,0}, the same either way. Out of range (latitude beyond
 * +-90 degrees, longitude beyond +-180) is bad input, refused before any call.
 */
final class Points {
  private static final int DECIMALS = 7;
  private static final BigDecimal E7 = BigDecimal.TEN.pow(DECIMALS);

  /** The largest integer that can be a degree: beyond it, an integer can only be E7. */
  private static final BigDecimal MAX_DEGREES = BigDecimal.valueOf(180);

  private static final String[] AXES = {"latitude", "longitude"};
  private static final int[] LIMITS_DEGREES = {90, 180};

  /** ASCII digits only, as the Python client takes them. */
  private static final Pattern NUMBER = Pattern.compile("[+-]?[0-9]+(\\.[0-9]+)?");

  private static final String EXAMPLE =
      "in degrees (-33.8688,151.2093) or degrees x 10^7 (-338688000,1512093000)";

  private Points() {}

  /** Two numbers and a comma; whether they make a point is {@link #point}'s to say. */
  static boolean looksLikePoint(String text) {
    String[] parts = text.split(",", -1);
    return parts.length == 2
        && NUMBER.matcher(parts[0].strip()).matches()
        && NUMBER.matcher(parts[1].strip()).matches();
  }

  /** {@code LAT,LON} in degrees or E7 integers, by the rule above. */
  static Point point(String text) throws UsageException {
    if (!looksLikePoint(text)) {
      throw new UsageException(
          "a point is LAT,LON " + EXAMPLE + ", got " + UsageException.quote(text));
    }
    String[] numbers = text.split(",", -1);
    BigDecimal[] values = new BigDecimal[2];
    boolean inDegrees = numbers[0].contains(".") || numbers[1].contains(".");
    for (int i = 0; i < 2; i++) {
      numbers[i] = numbers[i].strip();
      values[i] = new BigDecimal(numbers[i]);
      if (inDegrees) {
        int point = numbers[i].indexOf('.');
        if (point >= 0 && numbers[i].length() - point - 1 > DECIMALS) {
          throw new UsageException(
              UsageException.quote(text)
                  + ": "
                  + numbers[i]
                  + " has more than "
                  + DECIMALS
                  + " decimals (RouteGuide counts 10^-7 degrees)");
        }
        values[i] = values[i].multiply(E7);
      }
    }
    if (!inDegrees
        && values[0].abs().compareTo(MAX_DEGREES) <= 0
        && values[1].abs().compareTo(MAX_DEGREES) <= 0
        && (values[0].signum() != 0 || values[1].signum() != 0)) {
      throw new UsageException(
          UsageException.quote(text)
              + " could be degrees or degrees x 10^7: for degrees write "
              + numbers[0]
              + ".0,"
              + numbers[1]
              + ".0");
    }
    String unit = inDegrees ? "degrees" : "degrees x 10^7";
    for (int i = 0; i < 2; i++) {
      BigDecimal limit = BigDecimal.valueOf(LIMITS_DEGREES[i]);
      if (values[i].abs().compareTo(limit.multiply(E7)) > 0) {
        BigDecimal shown = inDegrees ? limit : limit.multiply(E7);
        throw new UsageException(
            UsageException.quote(text)
                + ": "
                + AXES[i]
                + " "
                + numbers[i]
                + " is outside -"
                + shown.toPlainString()
                + ".."
                + shown.toPlainString()
                + " "
                + unit);
      }
    }
    return Point.newBuilder()
        .setLatitude(values[0].intValueExact())
        .setLongitude(values[1].intValueExact())
        .build();
  }

  /**
   * {@code LAT,LON:message}; the message is everything after the first colon. A note not shaped
   * like one says so; a point shaped like one but wrong (out of range, ambiguous) says why.
   */
  static RouteNote note(String text) throws UsageException {
    int colon = text.indexOf(':');
    if (colon >= 0 && looksLikePoint(text.substring(0, colon))) {
      return RouteNote.newBuilder()
          .setLocation(point(text.substring(0, colon)))
          .setMessage(text.substring(colon + 1))
          .build();
    }
    throw new UsageException("a note is LAT,LON:message, got " + UsageException.quote(text));
  }

  /**
   * E7 as decimal degrees, exactly: always a decimal point (so the client reads it back as
   * degrees), no trailing zeros after the first decimal (37.0, -122.95, 0.0000001).
   */
  static String degrees(int e7) {
    BigDecimal value = BigDecimal.valueOf(e7, DECIMALS).stripTrailingZeros();
    return (value.scale() < 1 ? value.setScale(1) : value).toPlainString();
  }

  /**
   * A protobuf text format comment with each of the message's own Point fields in degrees ({@code #
   * location 37.0,-122.95}), or nothing: the line stays valid text format.
   */
  static String textComment(Message message) {
    List<String> shown = new ArrayList<>();
    // getAllFields() is sorted by field number, the order text format prints them in.
    for (Map.Entry<FieldDescriptor, Object> entry : message.getAllFields().entrySet()) {
      if (entry.getValue() instanceof Point point) {
        shown.add(
            entry.getKey().getName()
                + " "
                + degrees(point.getLatitude())
                + ","
                + degrees(point.getLongitude()));
      }
    }
    return shown.isEmpty() ? "" : " # " + String.join(" ", shown);
  }
}
