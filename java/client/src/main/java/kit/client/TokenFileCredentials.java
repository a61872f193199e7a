package kit.client;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.concurrent.Executor;

/**
 * {@code authorization: Bearer <token>} on every call, the token read from --token_file (and read
 * again when the file changes, as the Python client does), whitespace stripped. gRPC Java applies
 * call credentials whatever the transport's security, so Main refuses --insecure with a token to
 * anything but this machine.
 */
final class TokenFileCredentials extends CallCredentials {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final Path path;
  private Object stamp;
  private String token;

  private TokenFileCredentials(Path path) {
    this.path = path;
  }

  /** Reads the file once now, so a missing or empty one is bad input before any call. */
  static TokenFileCredentials load(String file) throws UsageException {
    TokenFileCredentials credentials = new TokenFileCredentials(Path.of(file));
    try {
      if (credentials.token().isEmpty()) {
        throw new UsageException("--token_file " + file + " is empty");
      }
    } catch (IOException e) {
      throw new UsageException("cannot read --token_file " + file + ": " + InputFiles.reason(e));
    }
    return credentials;
  }

  private synchronized String token() throws IOException {
    BasicFileAttributes attributes = Files.readAttributes(path, BasicFileAttributes.class);
    Object now = attributes.lastModifiedTime().toString() + "/" + attributes.size();
    if (!now.equals(stamp)) {
      token = new String(Files.readAllBytes(path), StandardCharsets.UTF_8).strip();
      stamp = now;
    }
    return token;
  }

  @Override
  public void applyRequestMetadata(
      RequestInfo requestInfo, Executor appExecutor, MetadataApplier applier) {
    try {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token());
      applier.apply(headers);
    } catch (IOException | IllegalArgumentException e) {
      applier.fail(
          Status.UNAUTHENTICATED
              .withDescription("cannot read --token_file " + path + ": " + InputFiles.reason(e))
              .withCause(e));
    }
  }

  // Abstract in some gRPC Java versions; no @Override so it compiles with or without it.
  public void thisUsesUnstableApi() {}
}
