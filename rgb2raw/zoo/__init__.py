"""The model zoo: every model, bundled, downloaded or local, described by one `ModelCard`.

- `rgb2raw.zoo.cards`: the schema (`ModelCard`), its JSON form, and the one card writer;
- `rgb2raw.zoo.contract`: `CardContract`, a card's contract resolved over its architecture's;
- `rgb2raw.zoo.registry`: the cards that exist, and what a user's model name or path means;
- `rgb2raw.zoo.cache`: where downloaded files live, and fetching them verified.

Importing the zoo imports neither numpy nor torch (shell completion lists model names).
"""

from __future__ import annotations

from rgb2raw.zoo.cache import (
    FileCheck,
    PullProgress,
    VerifyResult,
    cache_dir,
    file_path,
    file_urls,
    is_cached,
    model_path,
    offline,
    pull,
    verify,
)
from rgb2raw.zoo.cards import (
    CONTRACT_FIELDS,
    ModelCard,
    ModelFile,
    Reported,
    card_from_dict,
    card_to_dict,
    file_entry,
    load_card,
    write_card,
)
from rgb2raw.zoo.contract import CardContract
from rgb2raw.zoo.registry import (
    CHECKPOINT_SUFFIXES,
    LOCAL_CARD_NAME,
    complete_model_name,
    default_model,
    file_card,
    find_local_card,
    get_model,
    list_models,
    models_dir,
    resolve_model,
)

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "CONTRACT_FIELDS",
    "LOCAL_CARD_NAME",
    "CardContract",
    "FileCheck",
    "ModelCard",
    "ModelFile",
    "PullProgress",
    "Reported",
    "VerifyResult",
    "cache_dir",
    "card_from_dict",
    "card_to_dict",
    "complete_model_name",
    "default_model",
    "file_card",
    "file_entry",
    "file_path",
    "file_urls",
    "find_local_card",
    "get_model",
    "is_cached",
    "list_models",
    "load_card",
    "model_path",
    "models_dir",
    "offline",
    "pull",
    "resolve_model",
    "verify",
    "write_card",
]
