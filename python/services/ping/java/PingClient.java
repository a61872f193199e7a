package com.example.ping.client;

import kit.client.Main;

/**
 * Ping's client: the kit's client (java/client: the global flags, health) with ping's own
 * subcommands, the Java twin of ../client.py. {@code bazel run //python/services/ping/java:client
 * -- ping --server localhost:8080 --insecure --message hi}.
 */
public final class PingClient {
  private PingClient() {}

  public static void main(String[] argv) {
    Main.main(
        argv,
        client ->
            client.addSubcommand(new PingCommands.Ping()).addSubcommand(new PingCommands.Relay()));
  }
}
