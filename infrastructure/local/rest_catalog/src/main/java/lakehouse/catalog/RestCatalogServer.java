package lakehouse.catalog;

import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import jakarta.servlet.DispatcherType;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.FilterHolder;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The stack's Iceberg REST catalog: Apache Iceberg's own REST adapter and servlet over a catalog
 * built from CATALOG_* variables (a JDBC catalog in PostgreSQL with S3FileIO), served on one
 * address and guarded by OAuth2 client credentials.
 *
 * <p>CATALOG_KEY=value becomes catalog property "key" ("__" gives "-", "_" gives "."), the
 * convention of Iceberg's REST fixture image. The server itself reads REST_HOST (default
 * 127.0.0.1), REST_PORT (8181), REST_CATALOG_NAME (the name the JDBC catalog stores in each row),
 * REST_BASE_PATH (none: the API at `/`; `/api/catalog` serves it where Polaris does), the OAuth2
 * clients (REST_CLIENT_ID and REST_CLIENT_SECRET for one, REST_CLIENTS for several: `id:secret`
 * items separated by spaces or commas; both may be set), REST_SCOPE and REST_TOKEN_TTL_SECONDS
 * (3600). S3 keys come
 * from the AWS SDK's own variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), so that
 * they never appear among the catalog properties this server logs.
 */
public final class RestCatalogServer {
  private static final Logger LOG = LoggerFactory.getLogger(RestCatalogServer.class);
  private static final String PREFIX = "CATALOG_";

  private RestCatalogServer() {}

  static Map<String, String> catalogProperties(Map<String, String> env) {
    Map<String, String> properties = new HashMap<>();
    env.forEach(
        (name, value) -> {
          if (name.startsWith(PREFIX)) {
            String key = name.substring(PREFIX.length()).toLowerCase(Locale.ROOT);
            properties.put(key.replace("__", "-").replace('_', '.'), value);
          }
        });
    properties.putIfAbsent("catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog");
    properties.putIfAbsent("jdbc.schema-version", "V1");
    return properties;
  }

  static String required(Map<String, String> env, String name) {
    String value = env.get(name);
    if (value == null || value.isEmpty()) {
      throw new IllegalArgumentException(name + " must be set");
    }
    return value;
  }

  /** The OAuth2 clients of REST_CLIENT_ID/REST_CLIENT_SECRET and REST_CLIENTS. */
  static Map<String, String> clients(Map<String, String> env) {
    Map<String, String> clients = new LinkedHashMap<>();
    if (env.containsKey("REST_CLIENT_ID") || env.containsKey("REST_CLIENT_SECRET")) {
      clients.put(required(env, "REST_CLIENT_ID"), required(env, "REST_CLIENT_SECRET"));
    }
    clients.putAll(TokenIssuer.parseClients(env.getOrDefault("REST_CLIENTS", "")));
    if (clients.isEmpty()) {
      throw new IllegalArgumentException(
          "no OAuth2 client: set REST_CLIENT_ID and REST_CLIENT_SECRET, or REST_CLIENTS");
    }
    return clients;
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> env = System.getenv();
    Map<String, String> properties = catalogProperties(env);
    String name = env.getOrDefault("REST_CATALOG_NAME", "lakehouse");
    String host = env.getOrDefault("REST_HOST", "127.0.0.1");
    int port = Integer.parseInt(env.getOrDefault("REST_PORT", "8181"));
    String basePath = OAuth2Filter.normalise(env.getOrDefault("REST_BASE_PATH", ""));
    TokenIssuer issuer =
        new TokenIssuer(
            clients(env),
            env.getOrDefault("REST_SCOPE", ""),
            Long.parseLong(env.getOrDefault("REST_TOKEN_TTL_SECONDS", "3600")));

    LOG.info(
        "catalog {}: {} at {}, warehouse {}, file IO {}",
        name,
        properties.get("catalog-impl"),
        properties.get("uri"),
        properties.get("warehouse"),
        properties.getOrDefault("io-impl", "(default)"));
    Catalog catalog = CatalogUtil.buildIcebergCatalog(name, properties, null);

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    FilterHolder oauth2 = new FilterHolder(new OAuth2Filter(issuer, basePath));
    context.addFilter(oauth2, "/*", EnumSet.of(DispatcherType.REQUEST));
    context.addServlet(
        new ServletHolder(new RESTCatalogServlet(new RESTCatalogAdapter(catalog))), "/*");

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(host);
    connector.setPort(port);
    server.addConnector(connector);
    server.setHandler(context);
    server.setStopAtShutdown(true);
    server.start();
    LOG.info(
        "Iceberg REST catalog on http://{}:{}{} for {} OAuth2 client(s)",
        host,
        port,
        basePath,
        issuer.clientCount());
    server.join();
  }
}
