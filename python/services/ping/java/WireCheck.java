package com.example.ping.wire;

import com.example.ping.v1.Pong;
import com.example.ping.v1.Response;
import com.google.protobuf.Timestamp;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The Java half of ping's wire_test: writes the messages wire_test expects ({@code write DIR}), or
 * reads the ones Python wrote and prints their fields, one per line ({@code read DIR}).
 */
public final class WireCheck {
  private WireCheck() {}

  static Response response() {
    Timestamp received =
        Timestamp.newBuilder().setSeconds(1_795_241_207L).setNanos(123_456_789).build();
    return Response.newBuilder()
        .setPong(Pong.newBuilder().setIndex(7).setMessage("héllo ☃").setReceivedOn(received))
        .build();
  }

  static byte[] read(Path directory, String name) throws java.io.IOException {
    return Files.readAllBytes(directory.resolve(name));
  }

  public static void main(String[] args) throws Exception {
    Path directory = Path.of(args[1]);
    switch (args[0]) {
      case "write" -> {
        Files.write(directory.resolve("response.java.bin"), response().toByteArray());
      }
      case "read" -> {
        Pong pong = Response.parseFrom(read(directory, "response.py.bin")).getPong();
        Timestamp received = pong.getReceivedOn();
        System.out.println("index " + pong.getIndex());
        System.out.println("message " + pong.getMessage());
        System.out.println("received_on " + received.getSeconds() + " " + received.getNanos());
        boolean equal = pong.equals(response().getPong());
        System.out.println("equal " + equal);
      }
      default -> throw new IllegalArgumentException("usage: WireCheck write|read DIR");
    }
  }
}
