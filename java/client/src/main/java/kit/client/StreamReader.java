package kit.client;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The responses of an async stub's call, read on the caller's thread as they arrive: next() blocks
 * for the next message, returns null once the stream has ended OK, and throws the call's status as
 * a StatusRuntimeException when it failed.
 */
public final class StreamReader<T> implements StreamObserver<T> {
  private record Event<T>(T message, Throwable error) {}

  private static final Event<Object> END = new Event<>(null, null);

  private final BlockingQueue<Event<T>> events = new LinkedBlockingQueue<>();
  private boolean ended;

  @Override
  public void onNext(T message) {
    events.add(new Event<>(message, null));
  }

  @Override
  public void onError(Throwable error) {
    events.add(new Event<>(null, error));
  }

  @Override
  @SuppressWarnings("unchecked")
  public void onCompleted() {
    events.add((Event<T>) END);
  }

  public T next() throws InterruptedException {
    if (ended) {
      return null;
    }
    Event<T> event = events.take();
    if (event.error() != null) {
      ended = true;
      throw Status.fromThrowable(event.error()).asRuntimeException();
    }
    if (event.message() == null) {
      ended = true;
    }
    return event.message();
  }
}
