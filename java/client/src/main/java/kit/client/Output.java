package kit.client;

import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Prints each message as one line of protobuf text format, as the Python client does by default
 * ({@code text_format.MessageToString(message, as_one_line=True)}): fields by number, strings
 * escaped as Python escapes them (ASCII control characters, quotes and backslash; other characters
 * as they are), written as UTF-8 whatever the locale, flushed line by line.
 */
final class Output {
  static final PrintStream OUT =
      new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
  static final PrintStream ERR =
      new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);

  private Output() {}

  /** The message on one line, its points also in degrees (see {@link Points#textComment}). */
  static void show(Message message) {
    OUT.println(oneLine(message) + Points.textComment(message));
    OUT.flush();
  }

  /** A line on stderr, prefixed like the Python client's: {@code client: ...}. */
  static void error(String line) {
    ERR.println("client: " + line);
    ERR.flush();
  }

  static String oneLine(Message message) {
    StringBuilder out = new StringBuilder();
    print(message, out);
    return out.toString().strip();
  }

  /** The fields that are set, by field number, as Python's ListFields() gives them. */
  static List<Map.Entry<FieldDescriptor, Object>> fieldsByNumber(Message message) {
    List<Map.Entry<FieldDescriptor, Object>> fields =
        new ArrayList<>(message.getAllFields().entrySet());
    fields.sort(Comparator.comparingInt(entry -> entry.getKey().getNumber()));
    return fields;
  }

  private static void print(Message message, StringBuilder out) {
    for (Map.Entry<FieldDescriptor, Object> entry : fieldsByNumber(message)) {
      FieldDescriptor field = entry.getKey();
      if (field.isRepeated()) {
        for (Object element : (List<?>) entry.getValue()) {
          printField(field, element, out);
        }
      } else {
        printField(field, entry.getValue(), out);
      }
    }
  }

  private static void printField(FieldDescriptor field, Object value, StringBuilder out) {
    out.append(field.isExtension() ? "[" + field.getFullName() + "]" : field.getName());
    if (field.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
      out.append(" { ");
      print((Message) value, out);
      out.append("} ");
      return;
    }
    out.append(": ");
    switch (field.getJavaType()) {
      case ENUM -> {
        EnumValueDescriptor enumValue = (EnumValueDescriptor) value;
        // An unknown number has a descriptor too, named UNKNOWN_ENUM_VALUE_...: print the number.
        boolean known = enumValue.getType().findValueByNumber(enumValue.getNumber()) == enumValue;
        out.append(known ? enumValue.getName() : Integer.toString(enumValue.getNumber()));
      }
      case STRING -> out.append('"').append(escape((String) value)).append('"');
      case BYTE_STRING ->
          out.append('"')
              .append(escapeBytes(((com.google.protobuf.ByteString) value).toByteArray()))
              .append('"');
      case FLOAT ->
          out.append(floating(((Float) value).doubleValue(), Float.toString((Float) value)));
      case DOUBLE -> out.append(floating((Double) value, Double.toString((Double) value)));
      case LONG ->
          out.append(
              field.getType() == FieldDescriptor.Type.UINT64
                      || field.getType() == FieldDescriptor.Type.FIXED64
                  ? Long.toUnsignedString((Long) value)
                  : value.toString());
      case INT ->
          out.append(
              field.getType() == FieldDescriptor.Type.UINT32
                      || field.getType() == FieldDescriptor.Type.FIXED32
                  ? Integer.toUnsignedString((Integer) value)
                  : value.toString());
      default -> out.append(value); // BOOLEAN: true / false
    }
    out.append(' ');
  }

  private static String floating(double value, String shortest) {
    if (Double.isNaN(value)) {
      return "nan";
    }
    if (Double.isInfinite(value)) {
      return value > 0 ? "inf" : "-inf";
    }
    return shortest;
  }

  /** Python's {@code text_encoding.CEscape(text, as_utf8=True)}. */
  static String escape(String text) {
    StringBuilder out = new StringBuilder(text.length());
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c >= 128) {
        out.append(c);
      } else {
        escapeAscii(c, out);
      }
    }
    return out.toString();
  }

  /** Bytes fields: every byte outside printable ASCII as octal, as Python prints them. */
  private static String escapeBytes(byte[] bytes) {
    StringBuilder out = new StringBuilder(bytes.length);
    for (byte b : bytes) {
      int value = b & 0xff;
      if (value >= 128) {
        out.append(String.format("\\%03o", value));
      } else {
        escapeAscii((char) value, out);
      }
    }
    return out.toString();
  }

  private static void escapeAscii(char c, StringBuilder out) {
    switch (c) {
      case '\t' -> out.append("\\t");
      case '\n' -> out.append("\\n");
      case '\r' -> out.append("\\r");
      case '"' -> out.append("\\\"");
      case '\'' -> out.append("\\'");
      case '\\' -> out.append("\\\\");
      default -> {
        if (c < 32 || c == 127) {
          out.append(String.format("\\%03o", (int) c));
        } else {
          out.append(c);
        }
      }
    }
  }
}
