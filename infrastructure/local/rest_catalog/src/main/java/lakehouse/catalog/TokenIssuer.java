package lakehouse.catalog;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Issues and checks opaque bearer tokens for a fixed set of OAuth2 clients (an id and a secret
 * each) that share one optional scope.
 */
final class TokenIssuer {
  private final Map<String, byte[]> secrets = new LinkedHashMap<>();
  private final Set<String> scopes;
  private final long ttlSeconds;
  private final SecureRandom random = new SecureRandom();
  private final Map<String, Long> expiries = new ConcurrentHashMap<>();

  TokenIssuer(Map<String, String> clients, String scope, long ttlSeconds) {
    if (clients.isEmpty()) {
      throw new IllegalArgumentException("at least one OAuth2 client must be configured");
    }
    clients.forEach((id, secret) -> secrets.put(id, secret.getBytes(StandardCharsets.UTF_8)));
    this.scopes = scope.isBlank() ? Set.of() : Set.of(scope.trim().split("\\s+"));
    this.ttlSeconds = ttlSeconds;
  }

  /**
   * The clients of `pairs`, whitespace- or comma-separated `id:secret` items (a secret may hold
   * colons, an id may not).
   */
  static Map<String, String> parseClients(String pairs) {
    Map<String, String> clients = new LinkedHashMap<>();
    for (String item : pairs.trim().split("[\\s,]+")) {
      if (item.isEmpty()) {
        continue;
      }
      int colon = item.indexOf(':');
      if (colon <= 0 || colon == item.length() - 1) {
        String size = item.length() + " characters";
        throw new IllegalArgumentException(
            "REST_CLIENTS: each client is id:secret, got an item of " + size);
      }
      clients.put(item.substring(0, colon), item.substring(colon + 1));
    }
    return clients;
  }

  long ttlSeconds() {
    return ttlSeconds;
  }

  int clientCount() {
    return secrets.size();
  }

  /** True when the id is a client's and the secret is its own (compared in constant time). */
  boolean validClient(String id, String secret) {
    byte[] expected = id == null ? null : secrets.get(id);
    return expected != null
        && secret != null
        && MessageDigest.isEqual(expected, secret.getBytes(StandardCharsets.UTF_8));
  }

  /** True when every scope a client must ask for is in the space-separated `requested`. */
  boolean validScope(String requested) {
    if (scopes.isEmpty()) {
      return true;
    }
    return requested != null && Set.of(requested.trim().split("\\s+")).containsAll(scopes);
  }

  String scope() {
    return String.join(" ", scopes);
  }

  String issue() {
    byte[] bytes = new byte[32];
    random.nextBytes(bytes);
    String token = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    long now = System.currentTimeMillis();
    expiries.values().removeIf(expiry -> expiry < now);
    expiries.put(token, now + ttlSeconds * 1000);
    Arrays.fill(bytes, (byte) 0);
    return token;
  }

  /** True when `token` was issued here and has not expired yet. */
  boolean valid(String token) {
    Long expiry = token == null ? null : expiries.get(token);
    return expiry != null && expiry >= System.currentTimeMillis();
  }
}
