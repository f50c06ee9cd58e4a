# A CPU image that serves one trained medsift run over HTTP (medsift serve).
#
#   docker build -t medsift .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/demo-ade:/run:ro" medsift
#   curl localhost:8000/health
#
# Options after the image name go to `medsift serve`, e.g. `... medsift --backend onnx --max-batch 32`
# (the onnx backend needs `medsift export RUN --quantize` run beforehand). The run folder is mounted
# read-only; nothing is downloaded at run time (HF_HUB_OFFLINE=1): a run folder holds its weights.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    MEDSIFT_CACHE=/tmp/medsift-cache

WORKDIR /opt/medsift

# torch first, pinned, from the CPU index: a torch pulled in as a dependency would be a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install ".[serve,onnx]" && medsift --version

RUN useradd --create-home --uid 10001 medsift
USER medsift

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
ENTRYPOINT ["medsift", "serve", "/run", "--host", "0.0.0.0", "--port", "8000"]
