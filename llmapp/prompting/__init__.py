"""Stage 2: prompt engineering and prompt chains.

* :mod:`.templates`: a five-slot prompt template (role, task, examples,
  context, constraints) around the user's question, rendered exactly as sent.
* :mod:`.selectors`: few-shot example selectors: n-gram overlap, semantic
  similarity, max marginal relevance, and a token-length budget.
* :mod:`.structured`: validated JSON output from a Pydantic or JSON schema.
* :mod:`.chains`: sequential chains, chain-of-density, chain-of-thought and
  skeleton-of-thought, built from LCEL runnables.
"""

from llmapp.errors import LlmappError


class PromptError(LlmappError):
    """A template, an example set or a schema cannot be used as given."""
