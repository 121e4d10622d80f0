"""A prompt template with five slots around the user's question.

The user types only the question; the template fills in who the model is
(role), what to do (task), solved examples, context to answer from, and the
constraints on the answer. Empty slots are left out. The template text itself
can be edited; it may use ``{role}``, ``{task}``, ``{examples}``,
``{context}``, ``{constraints}`` and ``{question}``, nothing else.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmapp.prompting import PromptError
from llmapp.prompting.selectors import Example, format_example

SLOTS = ("role", "task", "examples", "context", "constraints", "question")
SYSTEM_TEMPLATE = "{role}\n\n## Task\n{task}\n\n## Constraints\n{constraints}"
USER_TEMPLATE = "## Examples\n{examples}\n\n## Context\n{context}\n\n## Question\n{question}"


def template_variables(template: str) -> list[str]:
    """The ``{names}`` a template uses.

    Raises:
        PromptError: the template's braces do not parse (use ``{{`` for a
            literal brace).
    """
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise PromptError(f"The template does not parse: {exc}. Write {{{{ and }}}} for literal "
                          "braces.") from None


def _fill(template: str, values: dict[str, str]) -> str:
    names = template_variables(template)
    unknown = sorted({n for n in names if n not in SLOTS})
    if unknown:
        raise PromptError(f"The template uses {', '.join('{' + n + '}' for n in unknown)}, "
                          f"which is not a slot. Use only {', '.join('{' + s + '}' for s in SLOTS)}.")
    # Sections whose slot is empty disappear with their heading.
    blocks = [b for b in template.split("\n\n")
              if not any(values.get(n, "") == "" for n in template_variables(b))]
    return "\n\n".join(blocks).format(**values).strip()


@dataclass
class PromptSpec:
    """The five slots, and the two templates they fill.

    Attributes:
        role: the persona, e.g. "You are a nutritionist."
        task: what to do with the question.
        examples: few-shot examples, already selected.
        context: text to answer from.
        constraints: rules for the answer (format, length, tone).
        system_template, user_template: editable; see :data:`SLOTS`.
    """

    role: str = "You are a helpful assistant."
    task: str = ""
    examples: Sequence[Example] = field(default_factory=list)
    context: str = ""
    constraints: str = ""
    system_template: str = SYSTEM_TEMPLATE
    user_template: str = USER_TEMPLATE

    def render(self, question: str) -> list[dict[str, str]]:
        """The messages exactly as sent: a system message and a user message.

        Raises:
            PromptError: no question, a template that does not parse, or one
                that uses a name that is not a slot.
        """
        if not question.strip():
            raise PromptError("Type a question first.")
        values = {"role": self.role.strip(), "task": self.task.strip(),
                  "examples": "\n\n".join(format_example(e) for e in self.examples),
                  "context": self.context.strip(), "constraints": self.constraints.strip(),
                  "question": question.strip()}
        messages = []
        system = _fill(self.system_template, values)
        if system:
            messages.append({"role": "system", "content": system})
        user = _fill(self.user_template, values)
        if "{question}" not in self.user_template and "{question}" not in self.system_template:
            raise PromptError("The templates never use {question}: the model would not see it.")
        messages.append({"role": "user", "content": user})
        return messages
