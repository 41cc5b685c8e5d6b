# gear_sonic images. Two targets from one file:
#   docker build --target cpu  -t gear_sonic:cpu  .    (CPU build of torch)
#   docker build --target cuda -t gear_sonic:cuda .    (PyPI's CUDA build of torch; run with --gpus all)
# Both install through scripts/install.sh, the script CI runs (.ci/run), and run as a non-root user.
ARG PYTHON_VERSION=3.11

# ---- base: python and the system libraries MuJoCo's offscreen rendering needs ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MUJOCO_GL=egl \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# Debian's security updates move these versions, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libegl1 libgl1 libglib2.0-0 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# ---- build stages: a virtual environment with gear_sonic and its dependencies ----
FROM base AS build-common
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential git \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /opt/gear_sonic
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/install.sh
COPY gear_sonic gear_sonic
ENV GEAR_SONIC_EXTRAS=storage,tensorboard,cluster

FROM build-common AS build-cpu
ENV TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN bash scripts/install.sh cpu

FROM build-common AS build-cuda
RUN bash scripts/install.sh cuda

# ---- runtime stages: the venv, the source tree, a non-root user ----
FROM base AS runtime
RUN useradd --create-home --uid 1000 --user-group sonic \
    && mkdir -p /experiments \
    && chown sonic:sonic /experiments
WORKDIR /opt/gear_sonic
COPY --chown=sonic:sonic . .
# Experiment dirs go to the shared volume (docker-compose.yml) unless base_dir says otherwise.
CMD ["python", "gear_sonic/train_agent_trl.py", "--help"]

FROM runtime AS cuda
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
COPY --from=build-cuda /opt/venv /opt/venv
USER 1000:1000

FROM runtime AS cpu
COPY --from=build-cpu /opt/venv /opt/venv
USER 1000:1000
