"""The channel between a local runtime's producer thread and the reader:
"busy" means the model was never got, not that the first token was slow."""

import time

import pytest

from llmapp.errors import ProviderError
from llmapp.providers.runtime import Delta, run_producer


def test_a_producer_that_got_the_model_may_take_long_over_its_first_token():
    def produce(channel):
        channel.admit()
        time.sleep(0.4)  # reading a long prompt on a slow CPU
        channel.put(Delta(text="late"))

    deltas = list(run_producer(produce, "test-slow-first-token").read(0.1))
    assert [d.text for d in deltas] == ["late"]


def test_a_producer_that_never_gets_the_model_is_busy():
    def produce(channel):
        time.sleep(0.4)  # queued behind other sessions
        channel.put(Delta(text="too late"))

    reader = run_producer(produce, "test-never-admitted").read(0.1)
    with pytest.raises(ProviderError) as err:
        next(reader)
    assert err.value.kind == "busy"
