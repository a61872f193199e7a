package com.example.routeguide.client;

import com.example.routeguide.v1.Point;
import com.example.routeguide.v1.RouteNote;
import kit.client.Main;

/**
 * Route guide's client: the kit's client (java/client: the global flags, health) with RouteGuide's
 * own subcommands, its points typed and shown in degrees (Points), the Java twin of ../client.py.
 * {@code bazel run //python/services/route_guide/java:client -- get-feature 37.0,-122.95 --server
 * localhost:8081 --insecure}.
 */
public final class RouteGuideClient {
  private RouteGuideClient() {}

  public static void main(String[] argv) {
    Main.main(
        argv,
        client ->
            client
                .addSubcommand(new RouteGuideCommands.GetFeature())
                .addSubcommand(new RouteGuideCommands.ListFeatures())
                .addSubcommand(new RouteGuideCommands.RecordRoute())
                .addSubcommand(new RouteGuideCommands.Chat())
                // After the subcommands: picocli registers a converter with those it has.
                .registerConverter(Point.class, Main.converter(Points::point))
                .registerConverter(RouteNote.class, Main.converter(Points::note)));
  }
}
