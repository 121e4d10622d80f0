"""Safety checkers that ask a server, used beside the offline one when
configured.

- :class:`OpenAIModeration`: OpenAI's moderation endpoint
  (``POST /v1/moderations``, model ``omni-moderation-latest``), with an
  OpenAI key. Its ``category_scores`` map onto
  :data:`~llmapp.safety.taxonomy.CATEGORIES` (the sub-categories onto their
  parent, the highest score winning).
- :class:`GuardModel`: a guard model on an OpenAI-compatible server
  (``LLMAPP_GUARD_MODEL``, e.g. ``llama-guard3`` on Ollama). Llama Guard 3
  answers ``safe``, or ``unsafe`` and a line of hazard codes (S1-S14, its
  model card's taxonomy), mapped by :data:`LLAMA_GUARD_CATEGORIES`; a flagged
  category scores 1.0.

Both raise :class:`~llmapp.safety.guard.SafetyError` when the server fails,
and the guard then decides with the offline checker alone, saying so.
"""

from __future__ import annotations

import re

from llmapp.errors import LlmappError
from llmapp.safety.taxonomy import CATEGORIES

OPENAI_CATEGORIES = {
    "sexual": "sexual", "sexual/minors": "sexual/minors", "hate": "hate",
    "hate/threatening": "hate", "harassment": "harassment",
    "harassment/threatening": "harassment", "violence": "violence",
    "violence/graphic": "violence/graphic", "self-harm": "self-harm",
    "self-harm/intent": "self-harm", "self-harm/instructions": "self-harm",
    "illicit": "illicit", "illicit/violent": "illicit",
}
"""OpenAI moderation category -> llmapp category."""

LLAMA_GUARD_CATEGORIES = {
    "S1": "violence", "S2": "illicit", "S3": "sexual", "S4": "sexual/minors",
    "S5": "harassment", "S7": "harassment", "S9": "illicit", "S10": "hate",
    "S11": "self-harm", "S12": "sexual", "S14": "illicit",
}
"""Llama Guard 3 hazard code -> llmapp category (S1 violent crimes, S2
non-violent crimes, S3 sex-related crimes, S4 child sexual exploitation, S5
defamation, S7 privacy, S9 indiscriminate weapons, S10 hate, S11 suicide and
self-harm, S12 sexual content, S14 code interpreter abuse; S6 specialized
advice, S8 intellectual property and S13 elections have no counterpart)."""


class CheckerError(LlmappError):
    """A remote checker could not answer."""


class OpenAIModeration:
    """OpenAI's moderation endpoint.

    Args:
        api_key: the OpenAI key (``SecretStr``).
        base_url: default OpenAI's (or ``OPENAI_BASE_URL``).
        timeout_s: seconds per request.
    """

    name = "OpenAI moderation"
    reads_any_language = True
    model = "omni-moderation-latest"

    def __init__(self, api_key, base_url: str | None = None, timeout_s: float = 10.0) -> None:
        from openai import OpenAI

        self._client = OpenAI(api_key=api_key.get_secret_value(), base_url=base_url,
                              timeout=timeout_s, max_retries=1)

    def scores(self, text: str, *, output: bool = False) -> dict[str, float]:
        """``{category: score}``.

        Raises:
            CheckerError: the request failed (the message has no key).
        """
        try:
            result = self._client.moderations.create(model=self.model, input=text).results[0]
        except Exception as exc:
            raise CheckerError(f"OpenAI moderation failed ({type(exc).__name__})") from exc
        raw = result.category_scores.model_dump(by_alias=True)
        out = {c: 0.0 for c in CATEGORIES}
        for name, score in raw.items():
            ours = OPENAI_CATEGORIES.get(name)
            if ours is not None and score is not None:
                out[ours] = max(out[ours], float(score))
        return out


class GuardModel:
    """A Llama Guard-style model on an OpenAI-compatible server.

    Args:
        base_url: the server, e.g. ``http://localhost:11434/v1``.
        model: the guard model's name there.
        api_key: the server's key (``SecretStr``) or None.
    """

    def __init__(self, base_url: str, model: str, api_key=None, timeout_s: float = 30.0
                 ) -> None:
        from openai import OpenAI

        self.name = f"guard model {model}"
        self.reads_any_language = True
        self.model = model
        self._client = OpenAI(api_key=api_key.get_secret_value() if api_key else "not-needed",
                              base_url=base_url, timeout=timeout_s, max_retries=1)

    def scores(self, text: str, *, output: bool = False) -> dict[str, float]:
        """``{category: 1.0 if flagged else 0.0}``.

        Raises:
            CheckerError: the request failed, or the answer is neither
                ``safe`` nor ``unsafe``.
        """
        try:
            reply = self._client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": text}],
                temperature=0, max_tokens=20)
            answer = (reply.choices[0].message.content or "").strip()
        except Exception as exc:
            raise CheckerError(f"the guard model failed ({type(exc).__name__})") from exc
        out = {c: 0.0 for c in CATEGORIES}
        verdict = answer.split()[0].lower() if answer.split() else ""
        if verdict == "safe":
            return out
        if verdict != "unsafe":
            raise CheckerError(f"the guard model answered neither safe nor unsafe: "
                               f"{answer[:40]!r}")
        for code in re.findall(r"S\d{1,2}", answer):
            if code in LLAMA_GUARD_CATEGORIES:
                out[LLAMA_GUARD_CATEGORIES[code]] = 1.0
        return out
