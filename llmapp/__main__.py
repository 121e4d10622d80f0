"""``python -m llmapp`` runs the CLI."""

import sys

from llmapp.cli import main

sys.exit(main())
