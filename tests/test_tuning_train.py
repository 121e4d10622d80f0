"""Training on the CPU (llmapp.tuning.train, jobs, worker, models): a few
real steps on the bundled model, the GGUF adapter it exports, its load by
the runtime, cancel, and the refusals."""

import json
import time

import numpy as np
import pytest
from helpers import ROOT, run_cli

from llmapp.errors import ProviderError
from llmapp.providers import GenerationParams, get_provider
from llmapp.providers.local import get_runtime
from llmapp.providers.runtime import Sampling
from llmapp.settings import resolve
from llmapp.tuning import jobs
from llmapp.tuning.models import ModelError, check_name, list_models
from llmapp.tuning.train import TrainConfig, TuningError, permute_rows

DEMO = ROOT / "data" / "tuning" / "short_answer.jsonl"


def test_q_and_k_rows_are_permuted_as_llama_cpp_stores_them():
    # 2 heads of 4 rows: each head's two rotary halves interleave
    rows = np.arange(8).reshape(8, 1)
    assert permute_rows(rows, 2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    assert permute_rows(rows, 1).ravel().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_model_names_are_checked():
    assert check_name("short-answer_2") == "short-answer_2"
    for bad in ("", "Short", "-x", "a b", "x" * 41, "../up"):
        with pytest.raises(ModelError, match="cannot name a model"):
            check_name(bad)


def small_dataset(tmp_path, n=16):
    path = tmp_path / "small.jsonl"
    path.write_text("".join(DEMO.read_text().splitlines(keepends=True)[:n]))
    return path


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One short real run (1 epoch of 16 examples: 2 steps), registered."""
    tmp = tmp_path_factory.mktemp("tuning")
    settings = resolve(environ={"LLMAPP_MODELS_PATH": str(tmp / "models")}, env_file={})
    job = jobs.start(settings, TrainConfig("tiny", epochs=1), small_dataset(tmp), 0.25)
    status = job.wait(timeout_s=600)
    assert status["status"] == "done", (status, (job.folder / "log.txt").read_text()[-2000:])
    return settings, job


@pytest.mark.slow
def test_a_run_reports_progress_and_registers_its_model(tuned):
    settings, job = tuned
    steps = [line for line in job.progress() if "step" in line]
    assert [s["step"] for s in steps] == [1, 2] and all(s["steps"] == 2 for s in steps)
    assert all(s["loss"] > 0 for s in steps)
    phases = [line["phase"] for line in job.progress() if "phase" in line]
    assert phases[:2] == ["checking the dataset", "tokenizing"]
    [model] = list_models(settings)
    assert model.name == "tiny" and model.label == "SmolLM2-135M + tiny"
    assert model.info["train_examples"] == 12 and model.info["held_out"] == 4
    assert len((model.folder / "heldout.jsonl").read_text().splitlines()) == 4
    result = model.info["result"]
    assert result["steps"] == 2 and result["peak_rss_mb"] > 0 and result["answer_tokens"] > 0
    assert result["epochs"] == 1
    assert not [p for p in model.folder.parent.iterdir() if p.name.startswith(".partial")]
    check = job.status()["held_out_check"]  # base and tuned answered the 4 held out
    assert check["examples"] == 4
    assert 0 <= check["base_form"] <= 1 and 0 <= check["tuned_form"] <= 1
    assert 0 < check["base_similarity"] <= 1 and 0 < check["tuned_similarity"] <= 1
    moved = max(check["tuned_form"] - check["base_form"],
                check["tuned_similarity"] - check["base_similarity"])
    assert ("warning" in check) == (moved < 0.02)  # 2 steps seldom teach anything


def test_epochs_default_to_enough_steps_for_the_size_of_the_set():
    from llmapp.tuning.train import MAX_EPOCHS, MIN_EPOCHS, MIN_STEPS, epochs_for

    assert epochs_for(95, 8) == 3  # the demo set: 12 steps an epoch, 36 steps
    assert epochs_for(54, 8) == 6  # the 60-example set, 10% held out: 42 steps
    assert epochs_for(45, 8) * 6 >= MIN_STEPS
    assert epochs_for(10_000, 8) == MIN_EPOCHS and epochs_for(10, 8) == MAX_EPOCHS


@pytest.mark.slow
def test_the_adapter_is_a_gguf_lora_that_the_runtime_applies_per_request(tuned):
    import gguf

    settings, _ = tuned
    [model] = list_models(settings)
    reader = gguf.GGUFReader(str(model.adapter))
    fields = {name: reader.fields[name] for name in ("general.type", "adapter.type",
                                                     "general.architecture")}
    values = {k: bytes(f.parts[f.data[0]]).decode() for k, f in fields.items()}
    assert values == {"general.type": "adapter", "adapter.type": "lora",
                      "general.architecture": "llama"}
    names = {t.name for t in reader.tensors}
    assert len(names) == 30 * 7 * 2  # 30 blocks, 7 projections, A and B
    assert {"blk.0.attn_q.weight.lora_a", "blk.29.ffn_down.weight.lora_b"} <= names
    path = str(model.adapter.resolve())
    runtime = get_runtime(adapters=(path,))
    assert runtime.adapters == (path,)
    greedy = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 24}
    question = [{"role": "user", "content": "What is the capital of France?"}]
    tuned_reply = "".join(d.text or "" for d in runtime.stream(
        question, Sampling(**greedy, adapter=path)))
    base_reply = "".join(d.text or "" for d in runtime.stream(question, Sampling(**greedy)))
    assert tuned_reply.strip() and base_reply.strip()
    with pytest.raises(ProviderError, match="is not loaded"):
        list(runtime.stream(question, Sampling(**greedy, adapter="/nowhere/adapter.gguf")))


@pytest.mark.slow
def test_every_page_can_pick_the_tuned_model_by_name(tuned):
    settings, _ = tuned
    picked = resolve(environ={"LLMAPP_MODELS_PATH": settings.models_path,
                              "LLMAPP_LOCAL_ADAPTER": "tiny"}, env_file={})
    local = get_provider("local")
    assert local.model_name(picked).endswith("+ tiny")
    model = local.chat_model(picked, GenerationParams(temperature=0.0, max_tokens=16))
    assert model.adapter and model.adapter in model.adapters
    assert model.invoke("Say hello.").content.strip()
    missing = resolve(environ={"LLMAPP_MODELS_PATH": settings.models_path,
                               "LLMAPP_LOCAL_ADAPTER": "nope"}, env_file={})
    with pytest.raises(ProviderError, match="no tuned model named 'nope'"):
        local.chat_model(missing, GenerationParams())


@pytest.mark.slow
def test_a_cancelled_run_leaves_nothing_registered(tmp_path):
    settings = resolve(environ={"LLMAPP_MODELS_PATH": str(tmp_path / "models")}, env_file={})
    job = jobs.start(settings, TrainConfig("never", epochs=50), small_dataset(tmp_path), 0.25)
    deadline = time.monotonic() + 300
    while not any("step" in line for line in job.progress()) and job.running:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    with pytest.raises(TuningError, match="A training run is going on"):
        jobs.start(settings, TrainConfig("second"), small_dataset(tmp_path), 0.25)
    job.cancel()
    status = job.wait(timeout_s=120)
    assert status["status"] == "cancelled" and "nothing was registered" in status["error"]
    assert list_models(settings) == []
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".jobs"]  # no partial left


def test_training_refuses_clearly_before_it_starts(tmp_path):
    settings = resolve(environ={"LLMAPP_MODELS_PATH": str(tmp_path / "models")}, env_file={})
    data = small_dataset(tmp_path)
    with pytest.raises(TuningError, match="needs about 1,000,000 MB of memory"):
        jobs.start(settings, TrainConfig("big"), data, min_memory_mb=1e6)
    with pytest.raises(ModelError, match="cannot name a model"):
        jobs.start(settings, TrainConfig("Bad Name"), data)


@pytest.mark.slow
def test_the_cli_trains_lists_and_refuses(tuned, tmp_path):
    settings, _ = tuned
    env = {"LLMAPP_MODELS_PATH": settings.models_path}
    listed = run_cli("tune", "models", "--json", **env)
    assert listed.returncode == 0 and [m["name"] for m in json.loads(listed.stdout)] == ["tiny"]
    assert "tiny" in run_cli("tune", "models", **env).stdout
    taken = run_cli("tune", "train", str(small_dataset(tmp_path)), "--name", "tiny", **env)
    assert taken.returncode == 2 and "named 'tiny' exists" in taken.stderr
    for args, message in (((str(DEMO), "--name", "x", "--epochs", "-1"), "--epochs must be"),
                          (("nowhere.jsonl", "--name", "x"), "There is no file nowhere.jsonl"),
                          ((str(DEMO), "--name", "x", "--held-out", "0.9"), "from 0 to 0.5")):
        bad = run_cli("tune", "train", *args, **env)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr


@pytest.mark.slow
def test_a_dataset_that_fails_its_checks_fails_the_run_clearly(tmp_path):
    settings = resolve(environ={"LLMAPP_MODELS_PATH": str(tmp_path / "models")}, env_file={})
    status = jobs.start(settings, TrainConfig("few"), small_dataset(tmp_path, n=5)).wait(120)
    assert status["status"] == "failed"
    assert status["error"] == ("The dataset has 1 problem(s); the file: 5 usable examples: train "
                               "on at least 10. (llmapp tune validate lists them all).")
    assert list_models(settings) == []
