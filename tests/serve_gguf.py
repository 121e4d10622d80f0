"""llama.cpp's own OpenAI-compatible HTTP server (from the xllamacpp wheel) on
localhost, serving the bundled model: the real server the OpenAI code path is
tested against.

    python tests/serve_gguf.py PORT API_KEY
"""

from __future__ import annotations

import signal
import sys
import threading

import xllamacpp

from llmapp.providers.local import bundled_model_path


def main() -> None:
    port, key = int(sys.argv[1]), sys.argv[2]
    params = xllamacpp.CommonParams()
    params.model.path = str(bundled_model_path())
    params.model_alias = {"smollm2"}
    params.n_ctx = 2048
    params.n_parallel = 2
    params.kv_unified = True
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.api_keys = [key]
    params.ui = False
    params.use_jinja = True  # OpenAI-style tool calls (llama.cpp's generic format)
    params.verbosity = -1
    server = xllamacpp.Server(params)
    print(server.listening_address, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    del server


if __name__ == "__main__":
    main()
