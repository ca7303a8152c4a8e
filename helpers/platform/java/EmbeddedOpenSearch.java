// A real single-node OpenSearch, embedded: the Node class from Maven Central's jars with the Netty4 HTTP and
// transport plugin (what the distribution loads from its modules folder), settings in code, 127.0.0.1 only.
// Compiled on first start by helpers/platform/opensearch_node.py:
//   java -cp '<jars>/*:<classes>' EmbeddedOpenSearch <home> <http port> <transport port>
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.CountDownLatch;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

public final class EmbeddedOpenSearch extends Node {

    private EmbeddedOpenSearch(Environment environment) {
        // the protected constructor is the one that accepts plugins from the classpath
        super(environment, List.of(Netty4Plugin.class), true);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EmbeddedOpenSearch <home folder> <http port> <transport port>");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("config"));
        Settings settings = Settings.builder()
            .put("cluster.name", "workbook")
            .put("node.name", "workbook-node")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", Integer.parseInt(args[1]))
            .put("transport.port", Integer.parseInt(args[2]))
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // a laptop's nearly full disk must not turn the log index read-only
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("node.processors", 1)
            .build();
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName("workbook-node");
        LogConfigurator.configureWithoutConfig(settings);
        Node node = new EmbeddedOpenSearch(new Environment(settings, home.resolve("config")));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();  // SIGTERM (`make stop`): flush and close the indices cleanly
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }));
        node.start();
        System.out.println("EmbeddedOpenSearch started on http://127.0.0.1:" + args[1]);
        stopped.await();
    }
}
