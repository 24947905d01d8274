# The platform image: Airflow 3.3.2 on Python 3.11 with Java 17, the locked requirements, the
# Delta jars (fetched at build time through Maven, never at run time) and the project.
# The Spark worker in docker-compose.yaml runs this same image, so UDFs see the same libraries.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    ML_PLATFORM_SPARK_JARS_DIR=/opt/ml-platform/jars \
    ML_PLATFORM_HOME=/opt/ml-platform/home \
    MLFLOW_DISABLE_TELEMETRY=true

# Delta jars for the image's Spark line, minus what pyspark ships (same rule as scripts/bootstrap.sh)
COPY scripts/jars/pom.xml /opt/ml-platform/pom.xml
RUN mvn -q -B -f /opt/ml-platform/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory=/opt/ml-platform/jars-all \
 && chown -R airflow: /opt/ml-platform

USER airflow
COPY --chown=airflow:root requirements.txt /opt/ml-platform/requirements.txt
RUN pip install --no-cache-dir -r /opt/ml-platform/requirements.txt
RUN python - <<'PY'
import os, pathlib, re, shutil, pyspark
spark_jars = {re.sub(r"-[0-9][^-]*\.jar$", "", p.name) for p in (pathlib.Path(pyspark.__file__).parent / "jars").glob("*.jar")}
out = pathlib.Path(os.environ["ML_PLATFORM_SPARK_JARS_DIR"]); out.mkdir(parents=True, exist_ok=True)
for jar in pathlib.Path("/opt/ml-platform/jars-all").glob("*.jar"):
    if re.sub(r"-[0-9][^-]*\.jar$", "", jar.name) not in spark_jars:
        shutil.copy(jar, out / jar.name)
PY

COPY --chown=airflow:root pyproject.toml /opt/ml-platform/src/pyproject.toml
COPY --chown=airflow:root include /opt/ml-platform/src/include
RUN pip install --no-cache-dir --no-deps /opt/ml-platform/src
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root spark_jobs /opt/airflow/spark_jobs
