package kit.client;

import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NegotiationType;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.ByteArrayInputStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;

/**
 * One channel to the server, as python/channels builds it: TLS to port 443 by default (the JVM's
 * trust roots, or --ca_cert), plaintext h2c with --insecure; a retry policy for UNAVAILABLE (Cloud
 * Run's GOAWAY on scale-in, an instance restarting); keepalive pings every 30 s during calls.
 */
final class Channels {
  static final int DEFAULT_TLS_PORT = 443;
  static final int KEEPALIVE_SECONDS = 30;

  /** host, or [v6 address], with an optional :port; as python/channels' _TARGET. */
  private static final Pattern TARGET =
      Pattern.compile("^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+)(?::(\\d{1,5}))?$");

  /** Every method of every service: up to 5 attempts while the status is UNAVAILABLE. */
  static final Map<String, ?> RETRY_SERVICE_CONFIG =
      Map.of(
          "methodConfig",
          List.of(
              Map.of(
                  "name", List.of(Map.of()),
                  "retryPolicy",
                      Map.of(
                          "maxAttempts",
                          5.0,
                          "initialBackoff",
                          "0.2s",
                          "maxBackoff",
                          "5s",
                          "backoffMultiplier",
                          2.0,
                          "retryableStatusCodes",
                          List.of("UNAVAILABLE")))));

  record Target(String host, int port) {
    @Override
    public String toString() {
      return host + ":" + port;
    }

    /** This machine: localhost, 127.0.0.0/8 or [::1]. */
    boolean isLoopback() {
      return host.equals("localhost") || host.startsWith("127.") || host.equals("[::1]");
    }
  }

  private Channels() {}

  /** {@code host[:port]}, port 443 when omitted. */
  static Target target(String server) throws UsageException {
    Matcher match = TARGET.matcher(server);
    if (match.matches()) {
      int port = match.group(2) == null ? DEFAULT_TLS_PORT : Integer.parseInt(match.group(2));
      if (port > 0 && port <= 65535) {
        return new Target(match.group(1), port);
      }
    }
    throw new UsageException("--server must be host[:port], got " + UsageException.quote(server));
  }

  static ManagedChannel open(Target target, boolean insecure, String caCert, String authority)
      throws UsageException {
    // "[::1]:8080" is no URI with a scheme, so gRPC reads it as dns:///[::1]:8080.
    NettyChannelBuilder builder =
        NettyChannelBuilder.forTarget(target.toString())
            .defaultServiceConfig(RETRY_SERVICE_CONFIG)
            .enableRetry()
            .keepAliveTime(KEEPALIVE_SECONDS, TimeUnit.SECONDS)
            .keepAliveTimeout(10, TimeUnit.SECONDS);
    if (authority != null) {
      try {
        builder.overrideAuthority(authority);
      } catch (IllegalArgumentException e) {
        throw new UsageException(
            "--authority must be host[:port], got " + UsageException.quote(authority));
      }
    }
    if (insecure) {
      builder.negotiationType(NegotiationType.PLAINTEXT);
    } else {
      builder.negotiationType(NegotiationType.TLS).sslContext(tls(caCert));
    }
    return builder.build();
  }

  /**
   * OpenSSL (netty-tcnative) does TLS: the JDK provider needs an ALPN that Debian's netty lacks.
   * Without --ca_cert the JVM's default trust store holds the roots.
   */
  private static SslContext tls(String caCert) throws UsageException {
    if (!OpenSsl.isAvailable()) {
      Throwable cause = OpenSsl.unavailabilityCause();
      throw new UsageException(
          "TLS needs netty-tcnative (OpenSSL), which did not load"
              + (cause == null ? "" : ": " + cause)
              + " (--insecure for plaintext)");
    }
    SslContextBuilder builder =
        GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.OPENSSL);
    try {
      if (caCert != null) {
        byte[] pem = InputFiles.read(caCert, "--ca_cert");
        builder.trustManager(new ByteArrayInputStream(pem));
      }
      return builder.build();
    } catch (SSLException | IllegalArgumentException e) {
      throw new UsageException(
          "--ca_cert " + caCert + " holds no usable PEM certificate (" + e.getMessage() + ")");
    }
  }
}
