package kit.client;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Files named by flags, with the Python client's wording when one cannot be read. */
final class InputFiles {
  private InputFiles() {}

  static byte[] read(String path, String flag) throws UsageException {
    try {
      return Files.readAllBytes(Path.of(path));
    } catch (IOException | InvalidPathException e) {
      throw new UsageException("cannot read " + flag + " " + path + ": " + reason(e));
    }
  }

  /** strerror-like: "No such file or directory", not Java's exception text. */
  static String reason(Exception e) {
    if (e instanceof NoSuchFileException) {
      return "No such file or directory";
    }
    if (e instanceof AccessDeniedException) {
      return "Permission denied";
    }
    return e.getMessage();
  }
}
