"""X12 005010X279A1 270/271 codec: tokenize, build inquiries and answers, read responses."""

from __future__ import annotations

from integrations.x12.build import Scenario, build_270, build_271
from integrations.x12.parse import parse_270, parse_271, results_to_json
from integrations.x12.tokenizer import Separators, X12Error, read_separators, tokenize

__all__ = [
    "Scenario",
    "Separators",
    "X12Error",
    "build_270",
    "build_271",
    "parse_270",
    "parse_271",
    "read_separators",
    "results_to_json",
    "tokenize",
]
