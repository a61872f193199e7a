package com.example.routeguide.client;

import com.example.routeguide.v1.Point;
import com.example.routeguide.v1.Rectangle;
import com.example.routeguide.v1.RouteGuideGrpc;
import com.example.routeguide.v1.RouteNote;
import com.example.routeguide.v1.RouteSummary;
import com.google.protobuf.Message;
import io.grpc.stub.StreamObserver;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import kit.client.Calls;
import kit.client.Output;
import kit.client.RpcCommand;
import kit.client.StreamReader;
import kit.client.UsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * RouteGuide's four kinds of call, each printing every message as it arrives, its points also in
 * degrees.
 */
final class RouteGuideCommands {
  private RouteGuideCommands() {}

  /** The message on one line, its points also in degrees (see {@link Points#textComment}). */
  private static void show(Message message) {
    Output.show(message, Points.textComment(message));
  }

  private static final String POINT_HELP =
      "LAT,LON in degrees (-33.8688,151.2093; up to 7 decimals) or in degrees x 10^7 integers"
          + " (-338688000,1512093000); integers all within +-180 are refused as ambiguous";

  @Command(name = "get-feature", description = "RouteGuide.GetFeature at a point.")
  public static final class GetFeature extends RpcCommand {
    @Parameters(paramLabel = "POINT", description = POINT_HELP)
    Point point;

    @Override
    protected void run(Calls calls) {
      show(calls.prepare(RouteGuideGrpc.newBlockingStub(calls.channel())).getFeature(point));
    }
  }

  @Command(name = "list-features", description = "RouteGuide.ListFeatures (a stream).")
  public static final class ListFeatures extends RpcCommand {
    @Parameters(index = "0", paramLabel = "LO", description = "one corner, LAT,LON")
    Point lo;

    @Parameters(index = "1", paramLabel = "HI", description = "the opposite corner, LAT,LON")
    Point hi;

    @Override
    protected void run(Calls calls) {
      Rectangle rectangle = Rectangle.newBuilder().setLo(lo).setHi(hi).build();
      calls
          .prepare(RouteGuideGrpc.newBlockingStub(calls.channel()))
          .listFeatures(rectangle)
          .forEachRemaining(RouteGuideCommands::show);
    }
  }

  /**
   * Client streaming: without points, --random_points (10) picked among the known features, so the
   * summary counts some. The Python client reads those from its feature file; this one asks the
   * server (ListFeatures over the whole map) first.
   */
  @Command(name = "record-route", description = "RouteGuide.RecordRoute: points in, summary out.")
  public static final class RecordRoute extends RpcCommand {
    @Option(
        names = "--random_points",
        paramLabel = "N",
        description = "without points: how many (default 10)")
    int randomPoints = 10;

    @Parameters(
        paramLabel = "LAT,LON",
        arity = "0..*",
        description = "default: random known features, listed by ListFeatures first")
    List<Point> points = new ArrayList<>();

    @Override
    protected void run(Calls calls) throws InterruptedException {
      List<Point> route = points.isEmpty() ? randomRoute(calls, randomPoints) : points;
      StreamReader<RouteSummary> summary = new StreamReader<>();
      StreamObserver<Point> sent =
          calls.prepare(RouteGuideGrpc.newStub(calls.channel())).recordRoute(summary);
      route.forEach(sent::onNext);
      sent.onCompleted();
      for (RouteSummary message = summary.next(); message != null; message = summary.next()) {
        show(message);
      }
    }
  }

  private static List<Point> randomRoute(Calls calls, int count) {
    Rectangle world =
        Rectangle.newBuilder()
            .setLo(Point.newBuilder().setLatitude(-900_000_000).setLongitude(-1_800_000_000))
            .setHi(Point.newBuilder().setLatitude(900_000_000).setLongitude(1_800_000_000))
            .build();
    List<Point> known = new ArrayList<>();
    calls
        .prepare(RouteGuideGrpc.newBlockingStub(calls.channel()))
        .listFeatures(world)
        .forEachRemaining(feature -> known.add(feature.getLocation()));
    Random random = new Random();
    List<Point> route = new ArrayList<>();
    for (int i = 0; i < count && !known.isEmpty(); i++) {
      route.add(known.get(random.nextInt(known.size())));
    }
    return route;
  }

  /**
   * Bidirectional streaming: notes from the command line, or one per line of stdin. Every note is
   * parsed before the call starts: a bad one is a usage error (exit 2), not a stream broken off
   * halfway.
   */
  @Command(name = "chat", description = "RouteGuide.RouteChat: notes in, earlier notes out.")
  public static final class Chat extends RpcCommand {
    @Parameters(
        paramLabel = "LAT,LON:message",
        arity = "0..*",
        description = "default: the lines of stdin, all read and checked before the call starts")
    List<RouteNote> notes = new ArrayList<>();

    @Override
    protected void run(Calls calls) throws UsageException, InterruptedException {
      List<RouteNote> sending = notes.isEmpty() ? notesFromStdin() : notes;
      StreamReader<RouteNote> earlier = new StreamReader<>();
      StreamObserver<RouteNote> sent =
          calls.prepare(RouteGuideGrpc.newStub(calls.channel())).routeChat(earlier);
      sending.forEach(sent::onNext);
      sent.onCompleted();
      for (RouteNote note = earlier.next(); note != null; note = earlier.next()) {
        show(note);
      }
    }
  }

  private static List<RouteNote> notesFromStdin() throws UsageException {
    List<RouteNote> notes = new ArrayList<>();
    BufferedReader lines =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    try {
      for (String line = lines.readLine(); line != null; line = lines.readLine()) {
        if (!line.strip().isEmpty()) {
          notes.add(Points.note(line.strip()));
        }
      }
    } catch (IOException e) {
      throw new UsageException("cannot read stdin: " + e.getMessage());
    }
    return notes;
  }
}
