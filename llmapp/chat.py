"""Stage 1: a chat with one model call per turn, streamed.

:class:`ChatStore` is the one chat store of a page session: rich messages
(content, stats, errors, notices) that the UI re-renders after every rerun.
:func:`start_reply` fits the history into the model's context window and
returns a :class:`Reply` whose stream is a plain ``Iterator[str]``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from llmapp.cache import CacheHit, CacheRequest, CacheUse
from llmapp.errors import LlmappError, ProviderError
from llmapp.memory import Memory
from llmapp.providers import GenerationParams, active_provider
from llmapp.repetition import LoopGuard
from llmapp.safety.guard import Guard, OutputMonitor, SafetyError
from llmapp.settings import Settings
from llmapp.streaming import ReplyStats, ReplyStream
from llmapp.tokens import Budget, fit_to_window


@dataclass
class ChatMessage:
    """One message of the transcript.

    Attributes:
        role: ``"user"`` or ``"assistant"``.
        content: Markdown text (for a failed reply, what arrived before the
            error, possibly empty).
        stats: measurements of an assistant reply.
        error: a user-facing error message when the reply failed.
        retryable: whether retrying the same request may succeed.
        notices: sentences the UI shows under the message (e.g. dropped turns).
        sources: for a grounded answer, the numbered chunks it was given, as
            dicts ``{n, source, page, index, score, text, cited}`` where
            ``cited`` is ``"model"``, ``"matched"`` (attributed by llmapp)
            or ``""`` (given but unused).
    """

    role: str
    content: str
    stats: ReplyStats | None = None
    error: str | None = None
    retryable: bool = False
    notices: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    """For an agent's reply: its steps (tool calls, results, limits) as dicts."""
    withheld: bool = False
    """Never sent to the model: a message the safety filter blocked, or a
    reply it withdrew (shown to the user, with the reason)."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Stable identifier (UUID4 hex): what feedback on a reply refers to."""
    earlier: list[dict] = field(default_factory=list)
    """Earlier versions this message replaced, oldest first: for a
    regenerated reply ``{"content"}``; for an edited question ``{"content",
    "reply"}`` (the question as first sent, and the reply it got)."""

    @property
    def ratable(self) -> bool:
        """True for a finished reply that can get feedback: an assistant
        message with text, not failed, not withdrawn."""
        return self.role == "assistant" and bool(self.content.strip()) and \
            self.error is None and not self.withheld

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ChatMessage:
        """The message :meth:`to_dict` gave; unknown keys are ignored.

        Raises:
            ValueError: no ``role`` or ``content``, or malformed stats.
        """
        if not isinstance(data, dict) or "role" not in data or "content" not in data:
            raise ValueError("a message needs a role and a content")
        known = {f for f in cls.__dataclass_fields__ if f in data}
        values = {f: data[f] for f in known}
        if values.get("stats") is not None:
            stat_fields = ReplyStats.__dataclass_fields__
            try:
                values["stats"] = ReplyStats(**{k: v for k, v in values["stats"].items()
                                                if k in stat_fields})
            except (TypeError, AttributeError) as exc:
                raise ValueError(f"malformed stats: {exc}") from None
        return cls(**values)


WITHDRAWN_VERSION = "*(withdrawn by the safety filter)*"
"""What Earlier versions show for a regenerated reply that was withdrawn."""


class ChatStore:
    """The messages of one conversation, oldest first."""

    def __init__(self) -> None:
        self.messages: list[ChatMessage] = []
        self.summary_state: tuple[str, int] = ("", 0)
        """Summary memory's ``(summary, n_messages_folded)``."""
        self.last_budget: Budget | None = None
        """What the model received on the last turn (a MemoryReport with memory)."""
        self.page = "chat"
        """Which page the chat is on (``simple``, ``rag``, ``memory``, ...): feedback says it."""
        self.system_prompt = ""
        """The system prompt of the last reply, for feedback's context."""

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self):
        return iter(self.messages)

    def add_user(self, text: str) -> ChatMessage:
        """Append the user's message; a failed reply before it is removed,
        since the user moved on."""
        self.drop_failed_reply()
        message = ChatMessage("user", text)
        self.messages.append(message)
        return message

    def add(self, message: ChatMessage) -> ChatMessage:
        """Append any message (an assistant reply, or a failed one). A reply
        after :meth:`regenerate` keeps the one it replaces."""
        superseded = getattr(self, "_superseded", None)
        if superseded and message.role == "assistant" and message.error is None:
            message.earlier = [*superseded, *message.earlier]
            self._superseded = None
        self.messages.append(message)
        return message

    def clear(self) -> None:
        """Forget the whole conversation."""
        self.messages.clear()
        self.summary_state = ("", 0)
        self.last_budget = None

    def drop_last_reply(self) -> None:
        """Remove the last message if it is a reply (to ask again)."""
        if self.messages and self.messages[-1].role == "assistant":
            self.messages.pop()

    @property
    def can_regenerate(self) -> bool:
        """True when the last message is a finished reply (not failed; a
        reply the safety filter withdrew counts) to a question that was sent."""
        if len(self.messages) < 2 or self.messages[-2].withheld:
            return False
        last = self.messages[-1]
        return last.ratable or (last.role == "assistant" and last.withheld and last.error is None)

    def regenerate(self) -> None:
        """Take back the last reply so the question is answered again; the
        next reply added keeps it among its :attr:`~ChatMessage.earlier`."""
        if not self.can_regenerate:
            return
        old = self.messages[-1]
        shown = WITHDRAWN_VERSION if old.withheld else old.content  # never the withdrawn text
        self._superseded = [*old.earlier, {"content": shown}]
        self.drop_last_reply()

    def edit_last_user(self, text: str) -> ChatMessage | None:
        """Replace the last question (and the reply it got) with ``text``;
        :meth:`edit_user` on the last question."""
        users = [m for m in self.messages if m.role == "user"]
        return self.edit_user(users[-1].id, text) if users else None

    def edit_user(self, message_id: str, text: str) -> ChatMessage | None:
        """Replace question ``message_id`` with ``text``, to be answered anew:
        the reply it got and everything after it are taken back (a new
        branch, as chat apps edit). The new question keeps the old one, its
        reply and how many later messages went, among its
        :attr:`~ChatMessage.earlier`. None when ``text`` is blank or no
        question has that id."""
        text = text.strip()
        at = next((i for i, m in enumerate(self.messages)
                   if m.id == message_id and m.role == "user"), None)
        if not text or at is None:
            return None
        old = self.messages[at]
        reply = next((m for m in self.messages[at + 1:at + 2] if m.role == "assistant"), None)
        later = len(self.messages) - at - 1 - (reply is not None)
        while len(self.messages) > at:  # newest first, as the stores delete
            count = len(self.messages)
            if self.messages[-1].role == "assistant":
                self.drop_last_reply()
            else:
                self._drop_last_user()
            if len(self.messages) == count:  # a message of another role: leave it
                return None
        version = {"content": old.content, "reply": reply.content if reply else ""}
        if later:
            version["later"] = later
        return self.add(ChatMessage("user", text, earlier=[*old.earlier, version]))

    def _drop_last_user(self) -> None:
        if self.messages and self.messages[-1].role == "user":
            self.messages.pop()

    def drop_failed_reply(self) -> None:
        """Remove a trailing failed reply, so the user message before it can be
        sent again (retry)."""
        if self.messages and self.messages[-1].error is not None:
            self.messages.pop()

    @property
    def awaiting_reply(self) -> bool:
        """True when the last message is the user's, with no reply yet."""
        return bool(self.messages) and self.messages[-1].role == "user"

    def history(self) -> list[dict[str, str]]:
        """Messages for the model: failed replies, and what the safety filter
        blocked or withdrew, are left out."""
        return [{"role": m.role, "content": m.content} for m in self.messages
                if m.error is None and not m.withheld]

    def withhold_last_user(self) -> None:
        """Mark the last user message as never to be sent to the model (the
        safety filter blocked it); it stays in the transcript."""
        for message in reversed(self.messages):
            if message.role == "user":
                message.withheld = True
                return

    def context_of(self, message: ChatMessage) -> list[dict[str, str]]:
        """What came before ``message``, as the model was sent it: the system
        prompt (when there was one), then the history up to it (failed and
        withheld messages left out). Empty when ``message`` is not here."""
        for index, candidate in enumerate(self.messages):
            if candidate is message or candidate.id == message.id:
                system = [{"role": "system", "content": self.system_prompt}] \
                    if self.system_prompt.strip() else []
                return system + [{"role": m.role, "content": m.content}
                                 for m in self.messages[:index]
                                 if m.error is None and not m.withheld]
        return []


log = logging.getLogger(__name__)

_LC_TYPES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_langchain(messages: Sequence[dict[str, str]]) -> list[BaseMessage]:
    """OpenAI-style dicts as LangChain messages."""
    return [_LC_TYPES[m["role"]](content=m["content"]) for m in messages]


@dataclass
class Reply:
    """A reply in flight. Iterate ``stream``; then :meth:`message` gives the
    :class:`ChatMessage` to store."""

    stream: ReplyStream
    budget: Budget

    @property
    def notices(self) -> list[str]:
        """Sentences for the UI, e.g. which turns the context budget dropped."""
        notice = self.budget.notice
        return [notice] if notice else []

    def message(self) -> ChatMessage:
        """The finished reply, with stats and notices. A reply the safety
        filter withdrew has no text, the reason as its notice, and is
        withheld from the model."""
        monitor = self.stream.monitor
        if self.stream.withdrawn:
            reason = monitor.verdict.reason("This reply") if monitor and monitor.verdict \
                else "This reply was withdrawn by the safety filter."
            return ChatMessage("assistant", "", stats=self.stream.stats,
                               notices=[*self.notices, reason], withheld=True)
        flags = [f"🛡️ Safety filter: {flag}." for flag in (monitor.flags if monitor else [])]
        return ChatMessage("assistant", self.stream.text, stats=self.stream.stats,
                           notices=[*self.notices, *flags])

    def failed(self, error: ProviderError) -> ChatMessage:
        """The reply as a failure: the text so far and the error."""
        return ChatMessage("assistant", self.stream.text, stats=None, error=str(error),
                           retryable=error.retryable, notices=self.notices)


SUMMARY_PARAMS = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=160)
"""Sampling for summary memory's summaries: greedy and short."""


def start_reply(store: ChatStore, settings: Settings, params: GenerationParams,
                system_prompt: str = "", memory: Memory | None = None,
                summary_state: tuple[str, int] = ("", 0), cache: CacheUse | None = None,
                guard: Guard | None = None, check_input: bool = True) -> Reply:
    """Prepare the next assistant reply to the conversation in ``store``.

    Counts tokens and chooses what history to send: with no ``memory``, the
    oldest turns are dropped until prompt + ``max_tokens`` fits the window
    (stage 1); with a :class:`~llmapp.memory.Memory`, its strategy decides
    (stage 4), and ``reply.budget`` is its :class:`~llmapp.memory.MemoryReport`.
    No request is sent until the stream is iterated, except the summary call
    of summary memory.

    With ``guard`` (:mod:`llmapp.safety`), the last user message is checked
    first (unless ``check_input`` is False: the caller checked it), and a
    blocked one never reaches the model: it is withheld in ``store`` and
    :class:`~llmapp.safety.SafetyError` is raised with the reason. The reply
    is checked while it streams, and withdrawn if it turns unsafe.

    With ``cache`` (:mod:`llmapp.cache`), a cached answer to the same request
    (the last message, given everything else the model sees) streams at once
    instead, with ``stats.cache`` saying how it was found; otherwise the
    finished reply is cached, unless it failed or was stopped early.

    Raises:
        ProviderError: the model cannot be built or loaded, the summary call
            failed, or the last message alone overflows the context window
            (:class:`~llmapp.errors.ContextOverflowError`).
        ConfigError: bad memory parameters.
        SafetyError: the guard blocked the last user message, or it is too
            long to check.
    """
    store.system_prompt = system_prompt
    if guard is not None and guard.active and check_input:
        check_last_user(store, guard)
    monitor = OutputMonitor(guard) if guard is not None and guard.active else None
    provider, _ = active_provider(settings)
    try:
        counter = provider.token_counter(settings)
        window = provider.context_window(settings)
        model = provider.chat_model(settings, params)
        if memory is None:
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
            budget = fit_to_window(messages + store.history(), counter, window, params.max_tokens)
        else:
            if memory.strategy == "summary":
                summarizer = provider.chat_model(settings, SUMMARY_PARAMS)
                memory.summarize = lambda prompt: str(summarizer.invoke(prompt).text)
            budget = memory.select(system_prompt, store.history(), counter, window,
                                   params.max_tokens, summary_state)
    except LlmappError:
        raise
    except Exception as exc:
        raise provider.describe_error(exc, settings) from exc
    if memory is not None and memory.strategy == "profile" and not provider.picks_tools:
        recalled = _recall(store, budget)
        if recalled is not None:
            return _recalled_reply(recalled.text(), budget, monitor)
        noted = _noted(store)
        if noted is not None:
            return _recalled_reply(noted, budget, monitor, NOTED_MODEL)
    info = provider.model_info(settings)
    stats = ReplyStats(provider=provider.name, model=provider.model_name(settings),
                       prompt_tokens=budget.prompt_tokens,
                       usage_source="counted" if counter.exact else "estimated")
    form = _requested_form(provider, store)
    grammar = {"grammar": form.grammar()} if form is not None else {}
    stats.form = form.describe() if form is not None else None
    lc_messages = to_langchain(budget.messages)
    request = _cache_request(cache, budget.messages, provider.name, stats.model, params)
    if request is not None:
        hit = None if cache.bypass else _lookup(cache, request)
        if hit is not None:
            stats.cache, stats.cached_question = f"hit-{hit.kind}", hit.question
            stream = ReplyStream(lambda: iter([hit.answer]), stats,
                                 count_text=counter.count_text, exact_count=counter.exact,
                                 on_finish=lambda done: _add_lookup_time(done, hit),
                                 monitor=monitor)
            return Reply(stream=stream, budget=budget)
        stats.cache = "miss"
    stream = ReplyStream(
        lambda: model.stream(lc_messages, **grammar),
        stats,
        count_text=counter.count_text,
        exact_count=counter.exact,
        on_error=lambda exc: provider.describe_error(exc, settings),
        price=(info.usd_per_1m_input, info.usd_per_1m_output) if info else None,
        guard=LoopGuard(),
        on_finish=(lambda done: _remember(cache, request, done)) if request else None,
        monitor=monitor,
    )
    return Reply(stream=stream, budget=budget)


def _requested_form(provider, store: ChatStore):
    """The form the last user message asks for, when the provider's model
    needs a grammar to keep it (it cannot pick tools either, and its runtime
    takes a grammar), else None: see :mod:`llmapp.prompting.formats`."""
    from llmapp.prompting.formats import format_request

    history = store.history()
    if provider.picks_tools or not provider.decodes_grammar or not history or \
            history[-1]["role"] != "user":
        return None
    return format_request(history[-1]["content"])


RECALL_MODEL = "recalled from what you said"
"""The model name a profile answer's stats carry (its provider is ``llmapp``)."""
NOTED_MODEL = "noted in your profile"
"""The model name of profile memory's acknowledgement of a message that
only tells something about the user (:func:`llmapp.profile.acknowledgement`)."""


def _noted(store: ChatStore) -> str | None:
    """Profile memory's reply, for a model too small to answer it, to a
    message that only tells something about the user; else None."""
    from llmapp.profile import acknowledgement

    history = store.history()
    if not history or history[-1]["role"] != "user":
        return None
    return acknowledgement(history[-1]["content"])


def _recall(store: ChatStore, budget: Budget):
    """Profile memory's answer to the last message for a model too small to
    read its profile back (the same capability that routes its tools), or
    None: see :func:`llmapp.profile.recall`."""
    from llmapp.profile import recall
    from llmapp.rag.embeddings import LocalEmbeddings

    profile = getattr(budget, "profile", None)
    history = store.history()
    if not profile or not history:
        return None
    return recall(history[-1]["content"], profile, LocalEmbeddings())


def _recalled_reply(text: str, budget: Budget, monitor, model: str = RECALL_MODEL) -> Reply:
    """``text``, written by llmapp (no model call), as a reply that streams
    at once; ``model`` names where it came from on the stats line."""
    import time

    started = time.perf_counter()
    stats = ReplyStats(provider="llmapp", model=model, prompt_tokens=0,
                       usage_source="counted")

    def add_time(stream: ReplyStream) -> None:
        spent = time.perf_counter() - started
        stream.stats.ttft_s = (stream.stats.ttft_s or 0.0) + spent

    return Reply(stream=ReplyStream(lambda: iter([text]), stats, on_finish=add_time,
                                    monitor=monitor), budget=budget)


def check_last_user(store: ChatStore, guard: Guard, text: str | None = None) -> None:
    """Check the last user message (or ``text``, e.g. a question before its
    retrieved context is added) at the guard's level.

    Raises:
        SafetyError: blocked (the message is then withheld in ``store``), or
            the text is empty or too long to check.
    """
    if text is None:
        users = [m for m in store.messages if m.role == "user"]
        text = users[-1].content if users else ""
    verdict = guard.check(text)
    if not verdict.allowed:
        store.withhold_last_user()
        raise SafetyError(verdict.reason("Your message"), verdict)


def _cache_request(cache: CacheUse | None, messages: list[dict], provider: str, model: str,
                   params: GenerationParams) -> CacheRequest | None:
    if cache is None or cache.mode == "off" or not messages or \
            messages[-1]["role"] != "user":
        return None
    sampling = {"temperature": params.temperature, "top_p": params.top_p,
                "max_tokens": params.max_tokens, "stop": list(params.stop)}
    return cache.request(messages[-1]["content"], messages[:-1], f"{provider}:{model}",
                         sampling)


def _lookup(cache: CacheUse, request: CacheRequest) -> CacheHit | None:
    """The cached answer, or None; a failing cache is logged and skipped."""
    try:
        return cache.cache.lookup(request, cache.mode)
    except LlmappError as exc:
        log.warning("response cache lookup skipped: %s", exc)
        return None


def _add_lookup_time(stream: ReplyStream, hit: CacheHit) -> None:
    stream.stats.total_s += hit.lookup_s
    stream.stats.ttft_s = (stream.stats.ttft_s or 0.0) + hit.lookup_s


def _remember(cache: CacheUse, request: CacheRequest, stream: ReplyStream) -> None:
    if stream.stats.stopped is not None:
        return
    try:
        cache.cache.put(request, stream.text, embed=cache.mode == "semantic")
    except LlmappError as exc:
        log.warning("reply not cached: %s", exc)
