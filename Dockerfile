# The platform image: Airflow 3.3.2 on Python 3.11 with a Java 17 runtime, the locked requirements,
# the drift environment, the Delta and Azure jars and the platform installed as a wheel.
# Every service of docker-compose.yaml runs it (Airflow components and Celery workers, the Spark
# master and workers, the MLflow server, the BentoML service), so executors see the driver's libraries.
# Both stages start from the same release tag of the Airflow image (apache/airflow publishes one
# build per release tag); Maven lives in the first stage only.

# --- stage 1: the jars, fetched once through Maven (Spark never downloads jars at run time)
FROM apache/airflow:3.3.2-python3.11 AS jars
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends maven \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY scripts/jars/pom.xml /build/pom.xml
RUN mvn -q -B -f /build/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=/build/jars-all

# --- stage 2: the wheel of the platform (the package, its GE configuration and Bento build context)
FROM apache/airflow:3.3.2-python3.11 AS wheel
COPY --chown=airflow:root pyproject.toml README.md LICENSE requirements.txt bentofile.yaml /build/
COPY --chown=airflow:root include /build/include
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /build/dist /build

# --- the runtime image: no Maven, no compilers, no test tools; runs as the image's `airflow` user
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    ML_PLATFORM_SPARK_JARS_DIR=/opt/ml-platform/jars \
    ML_PLATFORM_DRIFT_PYTHON=/opt/ml-platform/venv-drift/bin/python \
    ML_PLATFORM_HOME=/opt/ml-platform/home \
    MLFLOW_DISABLE_TELEMETRY=true
RUN mkdir -p /opt/ml-platform/home && chown -R airflow:root /opt/ml-platform

USER airflow
COPY --chown=airflow:root requirements.txt requirements-drift.txt /opt/ml-platform/
RUN pip install --no-cache-dir --require-hashes -r /opt/ml-platform/requirements.txt
# the drift environment (alibi-detect pins numpy<2 and pandas<3): its own venv, the same wheel
COPY --from=wheel /build/dist/ /opt/ml-platform/dist/
RUN python -m venv /opt/ml-platform/venv-drift \
 && /opt/ml-platform/venv-drift/bin/pip install --no-cache-dir --require-hashes -r /opt/ml-platform/requirements-drift.txt \
 && /opt/ml-platform/venv-drift/bin/pip install --no-cache-dir --no-deps /opt/ml-platform/dist/*.whl \
 && pip install --no-cache-dir --no-deps /opt/ml-platform/dist/*.whl
# the jars pyspark does not ship already (the rule of scripts/bootstrap.sh and `ml-platform setup`)
COPY --from=jars --chown=airflow:root /build/jars-all /opt/ml-platform/jars-all
RUN ml-platform setup --jars-from /opt/ml-platform/jars-all && rm -rf /opt/ml-platform/jars-all

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root spark_jobs /opt/airflow/spark_jobs
