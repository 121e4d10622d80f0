"""The ``llmapp`` command line: a thin layer over the same library the pages use.

    llmapp chat "PROMPT" [--provider ...] [--model ...] [--system ...] ...
    llmapp doctor
    llmapp ingest PATH... [--collection] [--chunking] [--chunk-size] [--chunk-overlap]
    llmapp search QUERY [--collection] [--k] [--mmr] [--json]
    llmapp ask QUESTION [--collection] [--k]
    llmapp collections
    llmapp tool NAME --arg key=value
    llmapp agent QUESTION [--tools ...] [--tool-choice auto|router|model] [--json]
    llmapp chain structured|sequential|density|thought|skeleton TEXT [--schema] [--rounds]
    llmapp eval retrieval QUESTIONS.jsonl [--collection] [--k 5] [--compare ...] [--json]
    llmapp db upgrade|status [--url URL]
    llmapp guard TEXT [--level child|teen|adult|off] [--output] [--json]
    llmapp serve [--host 127.0.0.1] [--port 8000] [--workers N]
    llmapp tune validate FILE [--json]
    llmapp tune train FILE --name NAME [--epochs N] [--held-out FILE|SHARE] [--json]
    llmapp tune models [--json]
    llmapp models [--json] | models download KEY [--json] | models remove KEY

Errors end in one line on stderr and a non-zero exit: 1 when the model
failed, 2 for bad settings or arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from llmapp.errors import ConfigError, LlmappError


class IntermixedParser(argparse.ArgumentParser):
    """A parser that takes options before, between or after its positional
    arguments (``llmapp chain density --rounds 2 "text"``), by
    :meth:`argparse.ArgumentParser.parse_known_intermixed_args`; a parser with
    subcommands parses as usual (argparse cannot intermix those), and hands
    the rest to its subcommand's parser, which intermixes."""

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._parsing or any(a.nargs == argparse.PARSER for a in self._actions):
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand: one module per command group
    (:mod:`llmapp.cli.chat`, :mod:`llmapp.cli.rag`, :mod:`llmapp.cli.tools`,
    :mod:`llmapp.cli.db`, :mod:`llmapp.cli.safety`, :mod:`llmapp.cli.serve`,
    :mod:`llmapp.cli.tune`, :mod:`llmapp.cli.models`)."""
    from llmapp.cli import chat, db, models, rag, safety, serve, tools, tune

    parser = IntermixedParser(prog="llmapp",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (chat, rag, tools, db, safety, serve, tune, models):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmapp`` console script and ``python -m llmapp``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"llmapp: {exc}", file=sys.stderr)
        return 2
    except LlmappError as exc:
        print(f"llmapp: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file named on the command line
        print(f"llmapp: cannot read {exc.filename or 'a file'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llmapp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
