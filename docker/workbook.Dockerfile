# The workbook image: JupyterLab and the Spark master/worker of docker-compose.yml.
# python 3.11 (the version requirements.txt is locked for) + a Java 17 runtime (Spark 4, Kafka's
# tools) + Maven (resolves the Spark Kafka connector jars on first use) + requirements.txt.
# Bookworm, not the newer default Debian: Debian 13 no longer ships openjdk-17.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven procps \
 && rm -rf /var/lib/apt/lists/*

COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# Runs as WORKBOOK_UID with group 0 (see docker-compose.yml): home and work dirs are group-writable.
RUN useradd --uid 1000 --gid 0 --create-home --home-dir /home/learner learner \
 && mkdir -p /workbook /tmp/spark-work \
 && chmod -R g+rwX /home/learner /workbook /tmp/spark-work
ENV HOME=/home/learner \
    PYTHONPATH=/workbook
# PYTHONPATH: the workbook is bind-mounted at /workbook, so `import helpers` reads it there, as the
# editable install (`make install`) does outside Docker; notebooks anywhere import it the same way.
USER 1000:0
WORKDIR /workbook

EXPOSE 8888 4040
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/workbook"]
