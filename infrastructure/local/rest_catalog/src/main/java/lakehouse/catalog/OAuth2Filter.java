package lakehouse.catalog;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.apache.iceberg.rest.responses.ErrorResponse;
import org.apache.iceberg.rest.responses.ErrorResponseParser;

/**
 * OAuth2 in front of the catalog: POST /v1/oauth/tokens answers the client-credentials grant (and the
 * token-exchange grant Iceberg's Java client refreshes with); every other request needs a valid
 * bearer token, else 401 in the Iceberg REST error format.
 *
 * <p>With a base path (`/api/catalog`, where Polaris serves the same API) the API is served under it
 * only: the path is stripped before the catalog sees the request, and anything outside it is 404.
 * GET /healthz answers 200 without a token, for probes.
 */
final class OAuth2Filter implements Filter {
  static final String TOKENS_PATH = "/v1/oauth/tokens";
  static final String TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
  static final String ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
  private static final ObjectMapper JSON = new ObjectMapper();

  static final String HEALTH_PATH = "/healthz";

  private final TokenIssuer issuer;
  private final String basePath;

  OAuth2Filter(TokenIssuer issuer, String basePath) {
    this.issuer = issuer;
    this.basePath = normalise(basePath);
  }

  /** "" or "/a/b": one leading slash, no trailing one. */
  static String normalise(String basePath) {
    String trimmed = basePath == null ? "" : basePath.trim().replaceAll("/+$", "");
    if (trimmed.isEmpty()) {
      return "";
    }
    return trimmed.startsWith("/") ? trimmed : "/" + trimmed;
  }

  @Override
  public void doFilter(ServletRequest req, ServletResponse resp, FilterChain chain)
      throws IOException, ServletException {
    HttpServletRequest request = (HttpServletRequest) req;
    HttpServletResponse response = (HttpServletResponse) resp;
    String uri = request.getRequestURI();
    if (HEALTH_PATH.equals(uri) && "GET".equals(request.getMethod())) {
      send(response, 200, "{\"status\":\"ok\"}");
      return;
    }
    if (!basePath.isEmpty()) {
      if (!uri.startsWith(basePath + "/")) {
        ErrorResponse missing =
            ErrorResponse.builder()
                .responseCode(404)
                .withType("NotFoundException")
                .withMessage("Not found: the catalog is served under " + basePath)
                .build();
        send(response, 404, ErrorResponseParser.toJson(missing));
        return;
      }
      request = new Rebased(request, uri.substring(basePath.length()));
    }
    if (TOKENS_PATH.equals(request.getRequestURI())) {
      if (!"POST".equals(request.getMethod())) {
        oauthError(response, 400, "invalid_request", "token requests are POSTs");
      } else {
        token(request, response);
      }
      return;
    }
    if (issuer.valid(bearer(request))) {
      chain.doFilter(request, resp);
      return;
    }
    ErrorResponse error =
        ErrorResponse.builder()
            .responseCode(401)
            .withType("NotAuthorizedException")
            .withMessage("Not authorized: missing, unknown or expired bearer token")
            .build();
    send(response, 401, ErrorResponseParser.toJson(error));
  }

  private static String bearer(HttpServletRequest request) {
    String header = request.getHeader("Authorization");
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return null;
    }
    return header.substring(7).trim();
  }

  private void token(HttpServletRequest request, HttpServletResponse response) throws IOException {
    String grant = request.getParameter("grant_type");
    if ("client_credentials".equals(grant)) {
      String id = request.getParameter("client_id");
      String secret = request.getParameter("client_secret");
      String basic = request.getHeader("Authorization");
      if (id == null && basic != null && basic.regionMatches(true, 0, "Basic ", 0, 6)) {
        String pair =
            new String(Base64.getDecoder().decode(basic.substring(6).trim()), StandardCharsets.UTF_8);
        int colon = pair.indexOf(':');
        id = colon < 0 ? pair : pair.substring(0, colon);
        secret = colon < 0 ? null : pair.substring(colon + 1);
      }
      if (!issuer.validClient(id, secret)) {
        oauthError(response, 401, "invalid_client", "unknown client id or wrong client secret");
        return;
      }
    } else if (TOKEN_EXCHANGE.equals(grant)) {
      if (!issuer.valid(request.getParameter("subject_token"))) {
        oauthError(response, 400, "invalid_grant", "the subject token is unknown or expired");
        return;
      }
    } else {
      oauthError(response, 400, "unsupported_grant_type", "grant_type " + grant + " is not served");
      return;
    }
    if (!issuer.validScope(request.getParameter("scope"))) {
      oauthError(response, 400, "invalid_scope", "the scope must include " + issuer.scope());
      return;
    }
    ObjectNode body = JSON.createObjectNode();
    body.put("access_token", issuer.issue());
    body.put("token_type", "bearer");
    body.put("expires_in", issuer.ttlSeconds());
    body.put("issued_token_type", ACCESS_TOKEN_TYPE);
    if (!issuer.scope().isEmpty()) {
      body.put("scope", issuer.scope());
    }
    send(response, 200, JSON.writeValueAsString(body));
  }

  /** The request as the catalog servlet sees it: its path without the base path. */
  private static final class Rebased extends HttpServletRequestWrapper {
    private final String path;

    Rebased(HttpServletRequest request, String path) {
      super(request);
      this.path = path;
    }

    @Override
    public String getRequestURI() {
      return path;
    }

    @Override
    public String getPathInfo() {
      return path;
    }

    @Override
    public String getServletPath() {
      return "";
    }

    @Override
    public StringBuffer getRequestURL() {
      StringBuffer url = new StringBuffer(getScheme()).append("://").append(getServerName());
      return url.append(':').append(getServerPort()).append(path);
    }
  }

  private static void oauthError(HttpServletResponse response, int status, String error, String why)
      throws IOException {
    ObjectNode body = JSON.createObjectNode();
    body.put("error", error);
    body.put("error_description", why);
    send(response, status, JSON.writeValueAsString(body));
  }

  private static void send(HttpServletResponse response, int status, String json)
      throws IOException {
    response.setStatus(status);
    response.setContentType("application/json");
    response.setCharacterEncoding("UTF-8");
    response.getWriter().write(json);
  }
}
