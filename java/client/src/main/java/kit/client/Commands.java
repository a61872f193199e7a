package kit.client;

import java.util.Map;

/** Each subcommand's implementation, by the name Flags knows it by. */
final class Commands {
  private Commands() {}

  static final Map<String, Command> BY_NAME = Map.of(
      "ping", PingCommands.PING,
      "relay", PingCommands.RELAY,
      "get-feature", RouteGuideCommands.GET_FEATURE,
      "list-features", RouteGuideCommands.LIST_FEATURES,
      "record-route", RouteGuideCommands.RECORD_ROUTE,
      "chat", RouteGuideCommands.CHAT,
      "health", HealthCommand.HEALTH);
}
