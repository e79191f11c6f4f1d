package toolkit;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.SparkSession;

/**
 * A JVM Spark job that tracks itself in MLflow the way the MLflow Java client does: params and
 * metrics over REST, artifacts by running
 * {@code $MLFLOW_PYTHON_EXECUTABLE -m mlflow.store.artifact.cli log-artifact ...} (the Java client
 * has no artifact upload of its own). Usage: MlflowArtifactJob [EXPERIMENT_ID]. Prints
 * {@code RESULT_JSON {"run_id": ...}} for scripts.
 */
public final class MlflowArtifactJob {
  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  public static void main(String[] args) throws Exception {
    String tracking = System.getenv().getOrDefault("MLFLOW_TRACKING_URI", "http://127.0.0.1:5555");
    String experimentId = args.length > 0 ? args[0] : "0";

    String created = post(tracking, "runs/create",
        "{\"experiment_id\":\"" + experimentId + "\",\"run_name\":\"jar-job\",\"start_time\":"
            + System.currentTimeMillis() + "}");
    Matcher m = Pattern.compile("\"run_id\"\\s*:\\s*\"([0-9a-f]+)\"").matcher(created);
    if (!m.find()) {
      throw new IllegalStateException("no run_id in MLflow's answer: " + created);
    }
    String runId = m.group(1);

    SparkSession spark = SparkSession.builder().appName("mlflow-artifact-jar-job").getOrCreate();
    long multiplesOfSeven = spark.range(0, 100_000).filter("id % 7 = 0").count();
    spark.stop();

    post(tracking, "runs/log-parameter",
        "{\"run_id\":\"" + runId + "\",\"key\":\"range\",\"value\":\"100000\"}");
    post(tracking, "runs/log-metric",
        "{\"run_id\":\"" + runId + "\",\"key\":\"multiples_of_seven\",\"value\":" + multiplesOfSeven
            + ",\"timestamp\":" + System.currentTimeMillis() + ",\"step\":0}");

    Path result = Files.createTempFile("jar-job-result", ".csv");
    Files.writeString(result, "metric,value\nmultiples_of_seven," + multiplesOfSeven + "\n");
    logArtifact(result, runId, "jar-job");
    Files.delete(result);

    post(tracking, "runs/update",
        "{\"run_id\":\"" + runId + "\",\"status\":\"FINISHED\",\"end_time\":"
            + System.currentTimeMillis() + "}");
    System.out.println("RESULT_JSON {\"run_id\": \"" + runId + "\", \"multiples_of_seven\": "
        + multiplesOfSeven + "}");
  }

  /** What org.mlflow.tracking.CliBasedArtifactRepository does for logArtifact. */
  private static void logArtifact(Path file, String runId, String artifactPath)
      throws IOException, InterruptedException {
    String python = System.getenv().getOrDefault("MLFLOW_PYTHON_EXECUTABLE", "python");
    ProcessBuilder pb = new ProcessBuilder(python, "-m", "mlflow.store.artifact.cli",
        "log-artifact", "--local-file", file.toString(), "--run-id", runId,
        "--artifact-path", artifactPath);
    pb.inheritIO();
    int code;
    try {
      code = pb.start().waitFor();
    } catch (IOException e) {
      throw new IllegalStateException("Failed to exec '" + python
          + " -m mlflow.store.artifact.cli'; set MLFLOW_PYTHON_EXECUTABLE to a Python with mlflow", e);
    }
    if (code != 0) {
      throw new IllegalStateException("mlflow.store.artifact.cli exited with " + code);
    }
  }

  private static String post(String tracking, String endpoint, String json)
      throws IOException, InterruptedException {
    HttpRequest request = HttpRequest.newBuilder()
        .uri(URI.create(tracking.replaceAll("/+$", "") + "/api/2.0/mlflow/" + endpoint))
        .timeout(Duration.ofSeconds(30))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json))
        .build();
    HttpResponse<String> response = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) {
      throw new IllegalStateException(endpoint + " answered " + response.statusCode() + ": "
          + response.body());
    }
    return response.body();
  }
}
