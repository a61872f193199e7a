package com.example.ping.client;

import com.example.ping.v1.PingServiceGrpc;
import com.example.ping.v1.PingServiceGrpc.PingServiceBlockingStub;
import com.example.ping.v1.Request;
import kit.client.Calls;
import kit.client.Output;
import kit.client.RpcCommand;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** PingService: {@code ping} (Send) and {@code relay} (SendUpstream), each with --message. */
final class PingCommands {
  private PingCommands() {}

  /** What both subcommands send. */
  abstract static class PingCommand extends RpcCommand {
    @Option(names = "--message", paramLabel = "TEXT", description = "default ping")
    String message = "ping";

    PingServiceBlockingStub stub(Calls calls) {
      return calls.prepare(PingServiceGrpc.newBlockingStub(calls.channel()));
    }

    Request request() {
      return Request.newBuilder().setMessage(message).build();
    }
  }

  @Command(name = "ping", description = "PingService.Send: the server answers with a pong.")
  public static final class Ping extends PingCommand {
    @Override
    protected void run(Calls calls) {
      Output.show(stub(calls).send(request()));
    }
  }

  @Command(
      name = "relay",
      description = "PingService.SendUpstream: the server relays to its upstream.")
  public static final class Relay extends PingCommand {
    @Override
    protected void run(Calls calls) {
      Output.show(stub(calls).sendUpstream(request()));
    }
  }
}
