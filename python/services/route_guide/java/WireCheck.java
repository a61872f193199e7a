package com.example.routeguide.wire;

import com.example.routeguide.v1.Feature;
import com.example.routeguide.v1.Point;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The Java half of route guide's wire_test: writes the messages wire_test expects ({@code write
 * DIR}), or reads the ones Python wrote and prints their fields, one per line ({@code read DIR}).
 */
public final class WireCheck {
  private WireCheck() {}

  static Feature feature() {
    Point location = Point.newBuilder().setLatitude(409_146_138).setLongitude(-746_188_906).build();
    return Feature.newBuilder()
        .setName("Berkshire Valley Management Area Trail")
        .setLocation(location)
        .build();
  }

  static byte[] read(Path directory, String name) throws java.io.IOException {
    return Files.readAllBytes(directory.resolve(name));
  }

  public static void main(String[] args) throws Exception {
    Path directory = Path.of(args[1]);
    switch (args[0]) {
      case "write" -> {
        Files.write(directory.resolve("feature.java.bin"), feature().toByteArray());
      }
      case "read" -> {
        Feature feature = Feature.parseFrom(read(directory, "feature.py.bin"));
        Point location = feature.getLocation();
        System.out.println("name " + feature.getName());
        System.out.println("location " + location.getLatitude() + " " + location.getLongitude());
        boolean equal = feature.equals(feature());
        System.out.println("equal " + equal);
      }
      default -> throw new IllegalArgumentException("usage: WireCheck write|read DIR");
    }
  }
}
