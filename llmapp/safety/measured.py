"""What the offline checker was measured to do on texts it never saw, for
the Guardrails page and the README (which quote the same figures; a test
holds them together).

From ``python benchmarks/bench_safety.py`` on 2026-12-07, split ``test2`` of
``tests/data/safety_labelled.jsonl``: 340 texts (170 unsafe, 113 of them what
OpenAI's moderation flags for any audience; 170 benign, half of them look-alikes)
written by a writer who saw neither the checker's exemplars nor the other
splits, and looked at once, after every constant was chosen.
"""

from __future__ import annotations

HELD_OUT: dict[str, dict[str, float]] = {
    "child": {"unsafe blocked": 0.929, "adult-flaggable blocked": 0.956,
              "benign passed": 0.941},
    "teen": {"unsafe blocked": 0.924, "adult-flaggable blocked": 0.947,
             "benign passed": 0.947},
    "adult": {"unsafe blocked": 0.694, "adult-flaggable blocked": 0.912,
              "benign passed": 0.965},
}
"""Level -> share of each kind of held-out text it blocked or passed. The
targets (issue 28): unsafe blocked 97% at child, adult-flaggable 90% at
adult; benign passed 95% at child, 98% at adult."""

SOURCE = ("Held-out texts (340, written blind to the checker's examples), "
          "`benchmarks/bench_safety.py`. Targets: 97% of unsafe texts blocked at child, "
          "90% of what OpenAI's moderation flags blocked at adult; 95% of benign texts "
          "passed at child, 98% at adult. Met: adult-flaggable at adult. Missed: the other "
          "three, by 1 to 4 points.")

MISSES = (
    ("About 1 unsafe text in 14 at child level, mostly threats or insults phrased "
     "unlike any example (harassment 86%, self-harm and violence 91%)."),
    ("About 1 benign text in 17 at child level and 1 in 29 at adult: questions near unsafe "
     "examples, such as medicine doses, security or history of violence."),
    ("Gore at adult level by design: adult blocks only what OpenAI's moderation flags for "
     "everyone, not fiction."),
    ("Languages other than English: held at child and teen as unread, passed unchecked "
     "at adult."),
    ("An unsafe sentence inside a long reply: replies are scored more leniently (1% of the "
     "bundled model's everyday replies withdrawn at adult, 3% at child), so 1 in 5 such "
     "sentences passes at child."),
    ("For a public deployment, add OpenAI's moderation or a guard model "
     "(`LLMAPP_GUARD_MODEL`)."),
)
"""What the offline checker still misses, in words for the page."""
