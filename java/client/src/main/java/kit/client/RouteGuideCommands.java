package kit.client;

import com.example.routeguide.v1.Feature;
import com.example.routeguide.v1.Point;
import com.example.routeguide.v1.Rectangle;
import com.example.routeguide.v1.RouteGuideGrpc;
import com.example.routeguide.v1.RouteNote;
import com.example.routeguide.v1.RouteSummary;
import io.grpc.stub.StreamObserver;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;

/** RouteGuide's four kinds of call, each printing every message as it arrives. */
final class RouteGuideCommands {
  private RouteGuideCommands() {}

  /** Unary: {@code get-feature LAT,LON}. */
  static final Command GET_FEATURE = args -> {
    Point point = point("point", args.positionals().get(0));
    return calls -> Output.show(calls.prepare(RouteGuideGrpc.newBlockingStub(calls.channel())).getFeature(point));
  };

  /** Server streaming: {@code list-features LO_LAT,LO_LON HI_LAT,HI_LON}. */
  static final Command LIST_FEATURES = args -> {
    Rectangle rectangle = Rectangle.newBuilder()
        .setLo(point("lo", args.positionals().get(0)))
        .setHi(point("hi", args.positionals().get(1)))
        .build();
    return calls -> {
      Iterator<Feature> features =
          calls.prepare(RouteGuideGrpc.newBlockingStub(calls.channel())).listFeatures(rectangle);
      while (features.hasNext()) {
        Output.show(features.next());
      }
    };
  };

  /**
   * Client streaming: {@code record-route [LAT,LON ...]}; without points, --random_points (10)
   * picked among the known features, so the summary counts some. The Python client reads those
   * from its feature file; this one asks the server (ListFeatures over the whole map) first.
   */
  static final Command RECORD_ROUTE = args -> {
    List<Point> given = new ArrayList<>();
    for (String text : args.positionals()) {
      given.add(point("points", text));
    }
    int randomPoints = args.integer("random_points", 10);
    return calls -> {
      List<Point> points = given.isEmpty() ? randomRoute(calls, randomPoints) : given;
      StreamReader<RouteSummary> summary = new StreamReader<>();
      StreamObserver<Point> route = calls.prepare(RouteGuideGrpc.newStub(calls.channel())).recordRoute(summary);
      points.forEach(route::onNext);
      route.onCompleted();
      for (RouteSummary message = summary.next(); message != null; message = summary.next()) {
        Output.show(message);
      }
    };
  };

  private static List<Point> randomRoute(Calls calls, int count) {
    Rectangle world = Rectangle.newBuilder()
        .setLo(Point.newBuilder().setLatitude(-900_000_000).setLongitude(-1_800_000_000))
        .setHi(Point.newBuilder().setLatitude(900_000_000).setLongitude(1_800_000_000))
        .build();
    List<Point> known = new ArrayList<>();
    calls.prepare(RouteGuideGrpc.newBlockingStub(calls.channel())).listFeatures(world)
        .forEachRemaining(feature -> known.add(feature.getLocation()));
    Random random = new Random();
    List<Point> route = new ArrayList<>();
    for (int i = 0; i < count && !known.isEmpty(); i++) {
      route.add(known.get(random.nextInt(known.size())));
    }
    return route;
  }

  /**
   * Bidirectional streaming: {@code chat [LAT,LON:message ...]}, or one note per line of stdin.
   * Every note is parsed before the call starts: a bad one is a usage error (exit 2), not a
   * stream broken off halfway.
   */
  static final Command CHAT = args -> {
    List<RouteNote> given = new ArrayList<>();
    for (String text : args.positionals()) {
      try {
        given.add(Points.note(text));
      } catch (UsageException e) {
        throw new UsageException("argument notes: " + e.getMessage());
      }
    }
    return calls -> {
      List<RouteNote> notes = given.isEmpty() ? notesFromStdin() : given;
      StreamReader<RouteNote> earlier = new StreamReader<>();
      StreamObserver<RouteNote> sent = calls.prepare(RouteGuideGrpc.newStub(calls.channel())).routeChat(earlier);
      notes.forEach(sent::onNext);
      sent.onCompleted();
      for (RouteNote note = earlier.next(); note != null; note = earlier.next()) {
        Output.show(note);
      }
    };
  };

  private static List<RouteNote> notesFromStdin() throws UsageException {
    List<RouteNote> notes = new ArrayList<>();
    BufferedReader lines = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
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

  /** A positional point, its error named after the argument as argparse names it. */
  private static Point point(String argument, String text) throws UsageException {
    try {
      return Points.point(text);
    } catch (UsageException e) {
      throw new UsageException("argument " + argument + ": " + e.getMessage());
    }
  }
}
