package lakehouse.catalog;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Issues and checks opaque bearer tokens for one OAuth2 client (id, secret, optional scope). */
final class TokenIssuer {
  private final String clientId;
  private final byte[] clientSecret;
  private final Set<String> scopes;
  private final long ttlSeconds;
  private final SecureRandom random = new SecureRandom();
  private final Map<String, Long> expiries = new ConcurrentHashMap<>();

  TokenIssuer(String clientId, String clientSecret, String scope, long ttlSeconds) {
    this.clientId = clientId;
    this.clientSecret = clientSecret.getBytes(StandardCharsets.UTF_8);
    this.scopes = scope.isBlank() ? Set.of() : Set.of(scope.trim().split("\\s+"));
    this.ttlSeconds = ttlSeconds;
  }

  long ttlSeconds() {
    return ttlSeconds;
  }

  /** True when the id and secret are this client's (the secret compared in constant time). */
  boolean validClient(String id, String secret) {
    return clientId.equals(id)
        && secret != null
        && MessageDigest.isEqual(clientSecret, secret.getBytes(StandardCharsets.UTF_8));
  }

  /** True when every scope this client must ask for is in the space-separated `requested`. */
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
