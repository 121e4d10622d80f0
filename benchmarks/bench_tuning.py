"""Stage 7's demo, end to end: train the bundled model on
``data/tuning/short_answer.jsonl`` (the defaults: epochs chosen from the
set's size, rank 16, batch 8, on this machine's cores), then run the base and
the tuned model on the 20 held-out examples in one run. ``--examples 50``
trains on the first 50 only: the defaults must teach the style from a set
that small too (issue 29).

Prints training time, s/step, peak RSS of the training process, the
held-out checks before and after (share in the reference's form, mean
similarity to the reference) and tokens/s of the tuned model against the
base (the same runtime serves both; the adapter applies per request).

Needs the tune extra. Writes into a temporary models folder.

    python benchmarks/bench_tuning.py [--epochs 0 (auto)] [--examples 0 (all)]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from results_file import save

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmapp.settings import resolve  # noqa: E402
from llmapp.tuning import jobs  # noqa: E402
from llmapp.tuning.compare import compare_models  # noqa: E402
from llmapp.tuning.models import get_model  # noqa: E402
from llmapp.tuning.train import TrainConfig  # noqa: E402

DATA = ROOT / "data" / "tuning"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=0, help="0: chosen from the set's size")
    parser.add_argument("--examples", type=int, default=0, help="train on the first N (0: all)")
    parser.add_argument("--held-out", type=int, default=20, help="held-out examples to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = DATA / "short_answer.jsonl"
        if args.examples:
            data = Path(tmp) / "some.jsonl"
            data.write_text("".join((DATA / "short_answer.jsonl").read_text()
                                    .splitlines(True)[:args.examples]))
        settings = resolve(environ={"LLMAPP_MODELS_PATH": f"{tmp}/models"}, env_file={})
        job = jobs.start(settings, TrainConfig("bench", epochs=args.epochs), data,
                         DATA / "short_answer_heldout.jsonl")
        status = job.wait()
        if status["status"] != "done":
            print(status, (job.folder / "log.txt").read_text()[-3000:], file=sys.stderr)
            return 1
        result = status["result"]
        model = get_model(settings, "bench")
        held = [json.loads(line) for line in
                (model.folder / "heldout.jsonl").read_text().splitlines()][:args.held_out]
        report = compare_models(settings, model, held)
    totals = report.totals()
    print(f"training: {result['examples']} examples, {result.get('epochs')} epochs, "
          f"{result['steps']} steps in "
          f"{result['train_s']:.0f} s ({result['s_per_step']:.2f} s/step), base load "
          f"{result['load_s']:.0f} s, whole run {status['seconds']:.0f} s; peak RSS "
          f"{result['peak_rss_mb']:,.0f} MB; loss {result['first_loss']:.2f} -> "
          f"{result['last_loss']:.2f}")
    for side in ("base", "tuned"):
        t = totals[side]
        print(f"{side:5} on {len(report.rows)} held-out: in the reference's form "
              f"{t['form']:.0%}, similarity {t['similarity']:.2f}, {t['tokens_per_s']:.1f} "
              "tokens/s")
    ratio = totals["tuned"]["tokens_per_s"] / totals["base"]["tokens_per_s"]
    print(f"tokens/s, tuned / base: {ratio:.2f}")
    save("tuning.json", {"train": result, "whole_run_s": status["seconds"], "totals": totals,
                         "speed_ratio": ratio, "held_out": len(report.rows),
                         "examples_asked": args.examples, "epochs_asked": args.epochs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
